//! Applying one event to a customer's record and day history (and to the campaign
//! figures): the state change, before any rule is evaluated.

use super::{sketch_keys, Processor};
use crate::core::campaign::{in_window, stage_of};
use crate::core::days;
use crate::core::event::{CampaignAction, Event, Payload};
use crate::core::store::{pack, unpack, NO_DAY, SKETCHED, STANDING};
use crate::core::time::day_of;

impl Processor {
    /// The campaign flows of an event: each action and its cost counts for its campaign
    /// (which becomes the customer's latest if the customer took part), satisfaction
    /// answers count for the latest campaign the customer took part in. Also called for
    /// events the customer's state already holds but the checkpoint's flows do not
    /// (see `restore_campaigns`); the customer figures are in [`Processor::link_campaign`].
    pub(super) fn count_campaign(&mut self, slot: u32, ev: &Event<'_>) {
        let Some(book) = self.book.as_mut() else {
            return;
        };
        let rec = self.store.rec_mut(slot);
        match &ev.payload {
            Payload::Campaign {
                campaign_id,
                action,
                cost_cents,
            } => {
                let c = book.slot(campaign_id);
                book.record(c, *action, *cost_cents);
                if *action != CampaignAction::Touched {
                    rec.campaign = c;
                }
            }
            Payload::Survey {
                satisfaction_tenths: Some(sat),
                ..
            } if rec.campaign != 0 => book.satisfaction(rec.campaign, *sat),
            _ => {}
        }
    }

    /// The customer figures of an applied event (once per event: never for a duplicate
    /// or an already applied one): a campaign action moves the customer's link for that
    /// campaign along the funnel; an order or refund on a retained day adds to the revenue
    /// of the campaigns it converted for whose window holds the day. Runs after the day
    /// history took the event, so a conversion sees the orders consumed before it.
    fn link_campaign(&mut self, slot: u32, ev: &Event<'_>, retained: bool) {
        let (Some(book), Some(a)) = (self.book.as_mut(), self.s.analytics) else {
            return;
        };
        let window = a.attribution_window_days;
        let day = day_of(ev.ts);
        match &ev.payload {
            Payload::Campaign {
                campaign_id,
                action,
                ..
            } => {
                let c = book.find(campaign_id);
                let mut links = self.store.take_links(slot);
                let history = &self.work;
                book.engage(&mut links, c, stage_of(*action), day, |from| {
                    days::iter(history)
                        .filter(|e| in_window(e.day, from, window))
                        .map(|e| e.counts.amount)
                        .fold(0i64, i64::saturating_add)
                });
                self.store.set_links(slot, links);
            }
            Payload::Order { amount_cents, .. } | Payload::Refund { amount_cents }
                if retained && self.store.links(slot).is_some() =>
            {
                let amount = match ev.payload {
                    Payload::Refund { .. } => -*amount_cents,
                    _ => *amount_cents,
                };
                let mut links = self.store.take_links(slot);
                book.attribute(&mut links, day, amount, window);
                self.store.set_links(slot, links);
            }
            _ => {}
        }
    }

    pub(super) fn mutate(&mut self, slot: u32, ev: &Event<'_>, fp: u32) {
        let ev_day = day_of(ev.ts);
        // Labels first: the interner and the record are separate borrows.
        let mut tag_keys: [Option<u32>; 2] = [None, None];
        let mut profile: [Option<u32>; 4] = [None; 4];
        match &ev.payload {
            Payload::Order {
                channel, category, ..
            } => {
                tag_keys[0] = channel.as_deref().map(|c| self.labels.intern(c) << 1);
                tag_keys[1] = category
                    .as_deref()
                    .map(|c| (self.labels.intern(c) << 1) | 1);
            }
            Payload::Visit { channel } => {
                tag_keys[0] = channel.as_deref().map(|c| self.labels.intern(c) << 1);
            }
            Payload::Profile {
                account_manager,
                industry,
                region,
                segment,
            } => {
                for (i, v) in [account_manager, industry, region, segment]
                    .into_iter()
                    .enumerate()
                {
                    profile[i] = v.as_deref().map(|s| self.labels.intern(s));
                }
            }
            _ => {}
        }
        self.count_campaign(slot, ev);
        self.apply_task(slot, ev);
        let rec = self.store.rec_mut(slot);
        rec.clock = rec.clock.max(ev.ts);
        let today = day_of(rec.clock);
        let first_seen = pack(unpack(rec.first_seen_day).min(ev_day));
        if first_seen != rec.first_seen_day && rec.flags & SKETCHED != 0 {
            // An earlier event arrived late: leave the sketches; `evaluate` re-adds.
            if let Some(pop) = self.pop.as_mut() {
                pop.remove(sketch_keys(rec));
            }
            rec.flags &= !SKETCHED;
        }
        rec.first_seen_day = first_seen;
        let keep_from = today - self.s.retention_days as i32 + 1;
        // Was `ev_day` already a purchase day? Known exactly inside the retained history.
        let mut had_orders: Option<bool> = None;
        let payload = &ev.payload;
        let id_cap = self.s.limits.max_ids_per_customer_day;
        let retained = days::update(&self.work, keep_from, ev_day, &mut self.scratch, |d| {
            had_orders = Some(d.counts.orders > 0);
            let c = &mut d.counts;
            match payload {
                Payload::Order { amount_cents, .. } => {
                    c.orders = c.orders.saturating_add(1);
                    c.amount = c.amount.saturating_add(*amount_cents);
                }
                Payload::Refund { amount_cents } => {
                    c.amount = c.amount.saturating_sub(*amount_cents)
                }
                Payload::Visit { .. } => c.visits = c.visits.saturating_add(1),
                Payload::Complaint => c.complaints = c.complaints.saturating_add(1),
                Payload::Survey {
                    satisfaction_tenths: Some(sat),
                    ..
                } => {
                    c.surveys = c.surveys.saturating_add(1);
                    c.sat_tenths = c.sat_tenths.saturating_add(*sat);
                }
                Payload::Campaign { action, .. } => match action {
                    CampaignAction::Touched => c.touches = c.touches.saturating_add(1),
                    CampaignAction::Participated => {
                        c.participations = c.participations.saturating_add(1)
                    }
                    CampaignAction::Converted => c.conversions = c.conversions.saturating_add(1),
                },
                _ => {}
            }
            for k in tag_keys.into_iter().flatten() {
                d.tag(k);
            }
            d.remember(fp, id_cap);
        });
        std::mem::swap(&mut self.work, &mut self.scratch);
        if !retained {
            self.stats.beyond_retention += 1;
        }
        self.link_campaign(slot, ev, retained);
        let rec = self.store.rec_mut(slot);
        match payload {
            Payload::Order { amount_cents, .. } => {
                let new_day = match had_orders {
                    Some(had) => !had,
                    None => {
                        ev_day != unpack(rec.first_order_day)
                            && ev_day != unpack(rec.last_order_day)
                    }
                };
                rec.lifetime_orders = rec.lifetime_orders.saturating_add(1);
                rec.lifetime_value = rec.lifetime_value.saturating_add(*amount_cents);
                if new_day {
                    rec.purchase_days = rec.purchase_days.saturating_add(1);
                }
                let first = unpack(rec.first_order_day);
                rec.first_order_day = pack(if first == NO_DAY {
                    ev_day
                } else {
                    first.min(ev_day)
                });
                rec.last_order_day = pack(unpack(rec.last_order_day).max(ev_day));
                let minute = (ev.ts / 60_000) as i32;
                if minute > rec.burst_minute {
                    rec.burst_minute = minute;
                    rec.burst_count = 1;
                } else if minute == rec.burst_minute {
                    rec.burst_count = rec.burst_count.saturating_add(1);
                }
            }
            Payload::Refund { amount_cents } => {
                rec.lifetime_value = rec.lifetime_value.saturating_sub(*amount_cents);
            }
            Payload::Complaint => rec.open_complaints = rec.open_complaints.saturating_add(1),
            Payload::ComplaintResolved => {
                rec.open_complaints = rec.open_complaints.saturating_sub(1)
            }
            Payload::Survey { nps: Some(n), .. } => rec.last_nps = *n,
            Payload::Profile { .. } => {
                for (i, v) in profile.iter().enumerate() {
                    if let Some(id) = v {
                        if rec.labels[i] != *id as u16 {
                            rec.labels[i] = *id as u16;
                            rec.flags |= STANDING;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
