//! The outputs' hand-written JSON encodings (see `super::super::json` for why they are
//! not serde's): fields in declaration order, as the `Serialize` derives in `output.rs`
//! write them; `json::tests` checks the two agree.

use super::super::json::{object, Json};
use super::*;

impl Json for SourceRef {
    fn json(&self, b: &mut Vec<u8>) {
        object!(b, self, topic, partition, offset);
    }
}

impl Json for WindowOut {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            days,
            orders,
            monetary,
            aov,
            visits,
            complaints,
            surveys,
            satisfaction,
            campaign_touches,
            campaign_conversions,
            campaign_participations
        );
    }
}

impl Json for FactsOut {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            as_of,
            recency_days,
            days_without_order,
            tenure_days,
            lifecycle,
            first_seen,
            first_order,
            last_order,
            last_interaction,
            days_since_last_interaction,
            lifetime_orders,
            lifetime_value,
            currency,
            purchase_days,
            open_complaints,
            last_nps,
            windows,
            activity_score,
            churn_risk_index,
            visit_drop_pct,
            visits_baseline,
            p_alive,
            expected_purchases,
            expected_order_value,
            clv,
            horizon_days,
            preferred_channel,
            preferred_category,
            account_manager,
            industry,
            region,
            segment
        );
    }
}

impl Json for Headline {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            recency_days,
            window_days,
            orders,
            monetary,
            currency,
            p_alive,
            clv,
            tier
        );
    }
}

impl Json for ConditionValue {
    fn json(&self, b: &mut Vec<u8>) {
        object!(b, self, condition, value);
    }
}

impl Json for Reason {
    fn json(&self, b: &mut Vec<u8>) {
        object!(b, self, rule, level, conditions);
    }
}

impl Json for TierChanged {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            event_id,
            customer_id,
            from,
            to,
            rule,
            reasons,
            action,
            owner,
            due,
            trigger,
            event_time,
            emitted_at,
            source,
            rules_version,
            facts
        );
    }
}

impl Json for ChurnWarning {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            event_id,
            customer_id,
            level,
            previous_level,
            reasons,
            risk_index,
            owner,
            due,
            action,
            trigger,
            event_time,
            emitted_at,
            source,
            rules_version,
            facts
        );
    }
}

impl Json for WarningCleared {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            event_id,
            customer_id,
            previous_level,
            owner,
            trigger,
            event_time,
            emitted_at,
            source,
            rules_version,
            facts
        );
    }
}

impl Json for WarningState {
    fn json(&self, b: &mut Vec<u8>) {
        object!(b, self, level, reasons, task);
    }
}

impl Json for Profile {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            customer_id,
            tier,
            tier_since,
            peak_tier,
            previous_tier,
            action,
            warning,
            rules_version,
            facts
        );
    }
}

impl Json for Tombstone {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            event_id,
            customer_id,
            event_time,
            emitted_at,
            source
        );
    }
}

impl Json for DeadLetter {
    fn json(&self, b: &mut Vec<u8>) {
        object!(b, self, schema, event_id, reason, detail, original, source, emitted_at);
    }
}
