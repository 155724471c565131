//! Campaign effect (DOMAIN.md §6): per campaign, the customers it touched, that took
//! part and that converted, the revenue of converted customers within the attribution
//! window, cost, ROI and the satisfaction of participants.
//!
//! Two kinds of figures, kept apart because they survive a restart differently:
//! - **Flows** (events of each action, cost, satisfaction answers) count events. They are
//!   persisted with the partition's checkpoint and re-counted for events after it.
//! - **Customer figures** (distinct customers per stage, attributed revenue) are sums over
//!   each customer's [`Link`]s, which live in the customer's state and its changelog
//!   snapshot. Like the saved-customer sums (`care.rs`) they are rebuilt from the customers
//!   on restore, so a duplicate, a restart or a rebalance cannot count a customer twice.
//!
//! Stages form a funnel: a participation is also a touch, a conversion also a
//! participation, so `converted ≤ participated ≤ touched` and the conversion rate stays a
//! rate even when the CRM reports only the conversion.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::event::CampaignAction;
use super::time::Day;

/// One campaign's running figures (also the checkpoint's and the group report's form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSums {
    /// Campaign id (`other` for campaigns beyond the tracked limit).
    pub campaign: String,
    /// Touch events.
    pub touched: u64,
    /// Participation events.
    #[serde(default)]
    pub participated: u64,
    /// Conversion events.
    pub converted: u64,
    /// Sum of the `cost` of its events, cents.
    pub cost_cents: i64,
    /// Satisfaction answers from customers whose latest campaign taken part in is this.
    pub surveys: u64,
    /// Their sum, tenths.
    pub sat_tenths: u64,
    /// Distinct customers touched, participated, converted (funnel stages 1–3).
    #[serde(default)]
    pub customers: [i64; 3],
    /// Net order value (orders minus refunds) of converted customers inside the
    /// attribution window, cents.
    #[serde(default)]
    pub revenue_cents: i64,
}

impl CampaignSums {
    fn add(&mut self, o: &CampaignSums) {
        self.add_flows(o);
        for (a, b) in self.customers.iter_mut().zip(o.customers) {
            *a += b;
        }
        self.revenue_cents = self.revenue_cents.saturating_add(o.revenue_cents);
    }

    fn add_flows(&mut self, o: &CampaignSums) {
        self.touched += o.touched;
        self.participated += o.participated;
        self.converted += o.converted;
        self.cost_cents = self.cost_cents.saturating_add(o.cost_cents);
        self.surveys += o.surveys;
        self.sat_tenths += o.sat_tenths;
    }

    fn is_empty(&self) -> bool {
        *self
            == CampaignSums {
                campaign: self.campaign.clone(),
                ..Default::default()
            }
    }
}

/// A customer's engagement with one campaign: the furthest stage reached and, once
/// converted, the conversion day and the revenue attributed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The campaign's slot in the partition's [`CampaignBook`].
    pub campaign: u16,
    /// 1 touched, 2 participated, 3 converted.
    pub stage: u8,
    /// Day of the (first) conversion; meaningless before stage 3.
    pub converted_day: Day,
    /// Net order value attributed to the campaign, cents.
    pub revenue_cents: i64,
}

/// A customer's links, one per campaign (bounded by the book's tracked campaigns + 1).
pub type Links = SmallVec<[Link; 1]>;

/// The funnel stage of an action.
pub fn stage_of(action: CampaignAction) -> u8 {
    match action {
        CampaignAction::Touched => 1,
        CampaignAction::Participated => 2,
        CampaignAction::Converted => 3,
    }
}

/// Whether a day falls in the attribution window of a conversion on `converted`: the
/// conversion's day and the `window − 1` days after it.
pub fn in_window(day: Day, converted: Day, window: u16) -> bool {
    day >= converted && (day as i64) < converted as i64 + window as i64
}

/// Name of the bucket for campaigns beyond the tracked limit.
pub const OTHER_CAMPAIGN: &str = "other";

/// The tracked campaigns of a partition: the first `max` distinct campaign ids in event
/// order, then `other`. Slot numbers follow event order, so a replay of the same input
/// assigns the same slots.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignBook {
    max: usize,
    index: HashMap<String, u16>,
    /// Tracked campaigns by slot; `other` is `sums[max]` once used.
    sums: Vec<CampaignSums>,
    other: CampaignSums,
}

impl CampaignBook {
    /// A book tracking at most `max` campaigns by name.
    pub fn new(max: usize) -> CampaignBook {
        CampaignBook {
            max: max.min(u16::MAX as usize - 2),
            index: HashMap::new(),
            sums: Vec::new(),
            other: CampaignSums {
                campaign: OTHER_CAMPAIGN.into(),
                ..Default::default()
            },
        }
    }

    /// Slot of a campaign (registering it while there is room); `other` beyond the limit.
    /// Slots start at 1 (0 means "no campaign" in a record).
    pub fn slot(&mut self, name: &str) -> u16 {
        if let Some(s) = self.index.get(name) {
            return *s;
        }
        if self.sums.len() < self.max && name != OTHER_CAMPAIGN {
            self.sums.push(CampaignSums {
                campaign: name.to_string(),
                ..Default::default()
            });
            let s = self.sums.len() as u16;
            self.index.insert(name.to_string(), s);
            s
        } else {
            self.other_slot()
        }
    }

    fn other_slot(&self) -> u16 {
        self.max as u16 + 1
    }

    /// Slot of a campaign if tracked (`other` if not), without registering.
    pub fn find(&self, name: &str) -> u16 {
        self.index.get(name).copied().unwrap_or(self.other_slot())
    }

    /// Name of a slot (0 → none).
    pub fn name(&self, slot: u16) -> Option<&str> {
        match slot {
            0 => None,
            s if s == self.other_slot() => Some(OTHER_CAMPAIGN),
            s => self.sums.get(s as usize - 1).map(|c| c.campaign.as_str()),
        }
    }

    fn sums_mut(&mut self, slot: u16) -> Option<&mut CampaignSums> {
        if slot == self.other_slot() {
            Some(&mut self.other)
        } else if slot == 0 {
            None
        } else {
            self.sums.get_mut(slot as usize - 1)
        }
    }

    /// Counts an action event and its cost (a flow).
    pub fn record(&mut self, slot: u16, action: CampaignAction, cost_cents: Option<i64>) {
        if let Some(c) = self.sums_mut(slot) {
            match action {
                CampaignAction::Touched => c.touched += 1,
                CampaignAction::Participated => c.participated += 1,
                CampaignAction::Converted => c.converted += 1,
            }
            c.cost_cents = c.cost_cents.saturating_add(cost_cents.unwrap_or(0));
        }
    }

    /// Counts a satisfaction answer from a customer whose latest campaign is `slot`.
    pub fn satisfaction(&mut self, slot: u16, tenths: u32) {
        if let Some(c) = self.sums_mut(slot) {
            c.surveys += 1;
            c.sat_tenths += tenths as u64;
        }
    }

    /// Moves a customer's link for `slot` to `stage` if further along, counting the
    /// customer once in each stage it newly reaches. On a first conversion the link
    /// records `day` and takes `prior_revenue(day)`, the net order value the customer's
    /// history already holds inside the window (orders may be consumed before the
    /// conversion that they follow).
    pub fn engage(
        &mut self,
        links: &mut Links,
        slot: u16,
        stage: u8,
        day: Day,
        prior_revenue: impl FnOnce(Day) -> i64,
    ) {
        let i = match links.iter().position(|l| l.campaign == slot) {
            Some(i) => i,
            None => {
                links.push(Link {
                    campaign: slot,
                    stage: 0,
                    converted_day: day,
                    revenue_cents: 0,
                });
                links.len() - 1
            }
        };
        let old = links[i];
        if stage <= old.stage {
            return;
        }
        let mut new = Link { stage, ..old };
        if stage == 3 {
            new.converted_day = day;
            new.revenue_cents = prior_revenue(day);
        }
        self.apply(&old, -1);
        self.apply(&new, 1);
        links[i] = new;
    }

    /// Attributes an order's (or a refund's, negative) value on `day` to every campaign
    /// the customer converted for whose window holds that day.
    pub fn attribute(&mut self, links: &mut Links, day: Day, amount_cents: i64, window: u16) {
        for l in links.iter_mut() {
            if l.stage == 3 && in_window(day, l.converted_day, window) {
                l.revenue_cents = l.revenue_cents.saturating_add(amount_cents);
                if let Some(c) = self.sums_mut(l.campaign) {
                    c.revenue_cents = c.revenue_cents.saturating_add(amount_cents);
                }
            }
        }
    }

    /// Adds (`sign` = 1) or removes (−1) one customer's link from the customer figures:
    /// on restore, on erase, and around a stage change.
    pub fn apply(&mut self, l: &Link, sign: i64) {
        if let Some(c) = self.sums_mut(l.campaign) {
            for s in 0..l.stage.min(3) as usize {
                c.customers[s] += sign;
            }
            if l.stage == 3 {
                c.revenue_cents = c
                    .revenue_cents
                    .saturating_add(l.revenue_cents.saturating_mul(sign));
            }
        }
    }

    /// The figures, tracked campaigns in slot order, then `other` if used.
    pub fn lines(&self) -> Vec<CampaignSums> {
        let mut v = self.sums.clone();
        if !self.other.is_empty() {
            v.push(self.other.clone());
        }
        v
    }

    /// Adds the flows of persisted lines (from a checkpoint) to the book. Slots already
    /// given to campaigns (by restored customers) are kept, so records keep pointing at
    /// the right campaign; the customer figures are not taken from the checkpoint, they
    /// come from the restored customers' links.
    pub fn restore(&mut self, lines: &[CampaignSums]) {
        for l in lines {
            let slot = if l.campaign == OTHER_CAMPAIGN {
                self.other_slot()
            } else {
                self.slot(&l.campaign)
            };
            if let Some(c) = self.sums_mut(slot) {
                c.add_flows(l);
            }
        }
    }
}

/// One campaign's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignLine {
    /// Campaign id (`other`: campaigns beyond the tracked limit).
    pub campaign: String,
    /// Distinct customers touched (any action: a participation or a conversion is also a
    /// touch).
    pub touched: i64,
    /// Distinct customers that took part (participated or converted).
    pub participated: i64,
    /// Distinct customers that converted.
    pub converted: i64,
    /// Converted ÷ touched customers (`null` without touches).
    pub conversion_rate: Option<f64>,
    /// Action events as they came (touched, participated, converted), duplicates removed.
    pub events: CampaignEvents,
    /// Total cost.
    pub cost: f64,
    /// Cost ÷ converted customers (`null` without conversions).
    pub cost_per_converted_customer: Option<f64>,
    /// Net order value of converted customers inside the attribution window.
    pub revenue: f64,
    /// Revenue ÷ cost (`null` without cost).
    pub roi: Option<f64>,
    /// Mean satisfaction (1–5) of answers from participants whose latest campaign it is.
    pub mean_satisfaction: Option<f64>,
}

/// Campaign action events by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CampaignEvents {
    /// `touched` events.
    pub touched: u64,
    /// `participated` events.
    pub participated: u64,
    /// `converted` events.
    pub converted: u64,
}

/// Merges campaign sums from several partitions by name; `other` last, the rest by name.
pub fn merge_campaigns(parts: &[CampaignSums]) -> Vec<CampaignSums> {
    let mut by: std::collections::BTreeMap<&str, CampaignSums> = Default::default();
    for p in parts {
        by.entry(p.campaign.as_str())
            .or_insert_with(|| CampaignSums {
                campaign: p.campaign.clone(),
                ..Default::default()
            })
            .add(p);
    }
    let other = by.remove(OTHER_CAMPAIGN);
    by.into_values().chain(other).collect()
}

/// The report line of campaign sums.
pub fn campaign_line(c: &CampaignSums) -> CampaignLine {
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let [touched, participated, converted] = c.customers;
    let cost = c.cost_cents as f64 / 100.0;
    let revenue = c.revenue_cents as f64 / 100.0;
    CampaignLine {
        campaign: c.campaign.clone(),
        touched,
        participated,
        converted,
        conversion_rate: ratio(converted as f64, touched as f64),
        events: CampaignEvents {
            touched: c.touched,
            participated: c.participated,
            converted: c.converted,
        },
        cost,
        cost_per_converted_customer: ratio(cost, converted as f64),
        revenue,
        roi: ratio(revenue, cost),
        mean_satisfaction: ratio(c.sat_tenths as f64 / 10.0, c.surveys as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_is_bounded_and_restorable() {
        let mut b = CampaignBook::new(2);
        let x = b.slot("X");
        let y = b.slot("Y");
        let z = b.slot("Z");
        assert_eq!((x, y), (1, 2));
        assert_eq!(b.name(z), Some(OTHER_CAMPAIGN));
        assert_eq!(b.slot("W"), z, "every campaign beyond the limit is `other`");
        b.record(x, CampaignAction::Touched, Some(1000));
        b.record(x, CampaignAction::Converted, None);
        b.record(z, CampaignAction::Touched, None);
        b.satisfaction(x, 40);
        let mut links = Links::new();
        b.engage(&mut links, x, 3, 100, |_| 2_000);
        let lines = b.lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].campaign, OTHER_CAMPAIGN);
        // A restart: flows from the checkpoint, customer figures from the customers.
        let mut c = CampaignBook::new(2);
        c.restore(&lines);
        assert_eq!(c.lines()[0].customers, [0, 0, 0]);
        c.apply(&links[0], 1);
        assert_eq!(c.lines(), lines);
        assert_eq!(c.find("X"), 1);
        let l = campaign_line(&lines[0]);
        assert_eq!((l.touched, l.participated, l.converted), (1, 1, 1));
        assert_eq!(l.conversion_rate, Some(1.0));
        assert_eq!(l.cost_per_converted_customer, Some(10.0));
        assert_eq!(l.revenue, 20.0);
        assert_eq!(l.roi, Some(2.0));
        assert_eq!(l.mean_satisfaction, Some(4.0));
    }

    #[test]
    fn a_customer_counts_once_per_stage_and_revenue_stays_in_the_window() {
        let mut b = CampaignBook::new(10);
        let x = b.slot("X");
        let mut links = Links::new();
        b.engage(&mut links, x, 1, 10, |_| unreachable!());
        b.engage(&mut links, x, 1, 11, |_| unreachable!());
        b.engage(&mut links, x, 2, 12, |_| unreachable!());
        assert_eq!(b.lines()[0].customers, [1, 1, 0]);
        b.engage(&mut links, x, 3, 20, |d| {
            assert_eq!(d, 20);
            500
        });
        b.engage(&mut links, x, 3, 25, |_| unreachable!());
        assert_eq!(b.lines()[0].customers, [1, 1, 1]);
        // A 30-day window: days 20..=49.
        b.attribute(&mut links, 19, 1_000, 30);
        b.attribute(&mut links, 49, 2_000, 30);
        b.attribute(&mut links, 50, 4_000, 30);
        assert_eq!(b.lines()[0].revenue_cents, 2_500);
        assert_eq!(links[0].revenue_cents, 2_500);
        b.apply(&links[0], -1);
        assert_eq!(b.lines()[0].customers, [0, 0, 0]);
        assert_eq!(b.lines()[0].revenue_cents, 0);
    }
}
