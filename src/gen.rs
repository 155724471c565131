//! Synthetic customer events: seeded and reproducible, in event-time order, with the full
//! mix of types, Pareto-distributed spend, customers who go silent (some complain first),
//! some who come back, and a configurable fraction of duplicates and bad records.
//!
//! It simulates each customer as a renewal process whose rate depends on its state, merged
//! through a heap of next-event times, so memory is O(customers) and output is streamed.
//!
//! The population is shaped like the customers the default rules were written for, so
//! that the rules flag a minority: most customers visit and order at a steady cadence
//! (gaps vary around the customer's own rhythm instead of being memoryless, which made
//! "90 days without an order" and "visits fell by 70 %" fire on chance gaps alone), most
//! are satisfied (a minority is not), about one in five leaves during a year, slowing
//! down and souring before it goes, and some of those come back.
//!
//! The CRM answers complaints: the generator cannot know which warnings the service
//! raises (that is the service's job), but it knows whom it made complain, and a
//! complaint is what raises the high warning. So after most complaints the customer's
//! account manager sends `intervention` events for *the customer's open warning* (no
//! `warning_id`, which the contract allows): `acknowledged` — mostly within the high
//! level's 24 hours, a fifth of the time days later — then `done` or `dismissed`; about
//! one complaint in seven gets no answer. Late and missing answers are what the demo's
//! overdue escalations show; an answer when no warning is open is a counted no-op.
//! Everything is drawn from the one seeded generator, so `gen` stays reproducible.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Normal, Pareto};

use crate::core::time::{format_rfc3339, Ts, DAY_MS};

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Number of customers.
    pub customers: u32,
    /// Valid events to produce (duplicates and bad records come on top).
    pub events: u64,
    /// Seed; the same seed gives the same output.
    pub seed: u64,
    /// First instant.
    pub start: Ts,
    /// Days the events are spread over.
    pub days: u32,
    /// Fraction of events delivered twice.
    pub duplicates: f64,
    /// Fraction of extra bad records.
    pub bad: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            customers: 1000,
            events: 100_000,
            seed: 1,
            start: 1_704_067_200_000, // 2024-01-01T00:00:00Z
            days: 730,
            duplicates: 0.01,
            bad: 0.001,
        }
    }
}

const CHANNELS: [&str; 4] = ["web", "app", "store", "phone"];
const CATEGORIES: [&str; 6] = [
    "wealth",
    "insurance",
    "loans",
    "cards",
    "savings",
    "advisory",
];
const INDUSTRIES: [&str; 6] = [
    "retail",
    "manufacturing",
    "finance",
    "healthcare",
    "logistics",
    "education",
];
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
const SEGMENTS: [&str; 3] = ["smb", "enterprise", "consumer"];

struct Customer {
    rate_per_ms: f64,
    aov: f64,
    channel: u8,
    category: u8,
    satisfaction: f64,
    complainer: bool,
    churn_at: Ts,
    return_at: Ts,
    started: bool,
    /// A rough patch `[start, end)`: a customer who stays but goes quiet and sour for a
    /// while (a budget freeze, a bad experience), then recovers.
    dip: (Ts, Ts),
    /// When the next order is due: orders follow their own steady rhythm rather than
    /// being a random share of the events (a memoryless share left 90-day gaps between
    /// orders of one customer in five every year).
    next_order: Ts,
    /// Account manager number (from its first profile event).
    manager: u32,
    /// A CRM answer to a complaint is pending (one at a time).
    crm_pending: bool,
}

impl Customer {
    /// Within 45 days of leaving.
    fn leaving_soon(&self, t: Ts) -> bool {
        self.churn_at != Ts::MAX && t < self.churn_at && self.churn_at - t < 45 * DAY_MS
    }

    /// How much longer the gaps between events are at `t`: customers about to leave slow
    /// down first (what the visit-drop rule is meant to catch), and more so in a rough
    /// patch they will recover from.
    fn slowdown(&self, t: Ts) -> f64 {
        if (self.dip.0..self.dip.1).contains(&t) {
            4.0
        } else if self.leaving_soon(t) {
            2.0
        } else {
            1.0
        }
    }
}

/// Streams generated lines.
pub struct Generator {
    opts: GenOptions,
    rng: ChaCha8Rng,
    customers: Vec<Customer>,
    heap: BinaryHeap<Reverse<(Ts, u32)>>,
    emitted: u64,
    seq: u64,
    pending: VecDeque<(u64, Vec<u8>, Option<String>)>,
    line_no: u64,
    now: Ts,
    key: Option<String>,
    /// Account managers: one per ~1,000 customers (a pooled book of consumer and
    /// small-business accounts), 1 to 40.
    managers: u32,
    /// CRM answers to come: (time, customer, stage 0 = acknowledge, 1 = close).
    crm: BinaryHeap<Reverse<(Ts, u32, u8)>>,
    /// The event just written was a complaint.
    complained: bool,
}

impl Generator {
    /// A generator.
    pub fn new(opts: GenOptions) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let span = opts.days.max(1) as f64 * DAY_MS as f64;
        // Spread of activity between customers: a quiet customer is about half as active
        // as the median one, not a tenth (σ 0.9 made a fifth of them order less than every
        // 90 days, each a standing silence warning).
        let activity = LogNormal::new(0.0, 0.45).expect("valid");
        let content: Normal<f64> = Normal::new(4.0, 0.6).expect("valid");
        let spend: Pareto<f64> = Pareto::new(300.0, 1.3).expect("valid");
        let n = opts.customers.max(1);
        let end = opts.start + span as Ts;
        let mut customers = Vec::with_capacity(n as usize);
        let mut heap = BinaryHeap::with_capacity(n as usize);
        let mut weighted_active = 0.0f64;
        for i in 0..n {
            let w = activity.sample(&mut rng);
            let join = opts.start + (rng.gen::<f64>().powf(1.5) * span * 0.85) as Ts;
            let churns = rng.gen_bool(0.2);
            let churn_at = if churns {
                join + (rng.gen::<f64>() * (end - join) as f64) as Ts
            } else {
                Ts::MAX
            };
            let return_at = if churns && rng.gen_bool(0.35) {
                churn_at + ((60.0 + rng.gen::<f64>() * 160.0) * DAY_MS as f64) as Ts
            } else {
                Ts::MAX
            };
            // A third of those who stay have a rough patch of 30 to 75 days.
            let dip = if !churns && rng.gen_bool(0.33) {
                let at = join + (rng.gen::<f64>() * (end - join) as f64) as Ts;
                (
                    at,
                    at + ((30.0 + rng.gen::<f64>() * 45.0) * DAY_MS as f64) as Ts,
                )
            } else {
                (Ts::MAX, Ts::MAX)
            };
            // Active time inside the span: [join, end) minus the silent [churn_at, return_at).
            let silent = churn_at.min(end)..return_at.min(end);
            let active = (end - join) - (silent.end - silent.start).max(0);
            weighted_active += w * active.max(DAY_MS) as f64;
            customers.push(Customer {
                rate_per_ms: w,
                aov: spend.sample(&mut rng).min(2_000_000.0),
                channel: rng.gen_range(0..CHANNELS.len()) as u8,
                category: rng.gen_range(0..CATEGORIES.len()) as u8,
                satisfaction: if rng.gen_bool(0.1) {
                    rng.gen_range(1.5..3.0)
                } else {
                    content.sample(&mut rng).clamp(3.0, 5.0)
                },
                complainer: rng.gen_bool(0.08),
                churn_at,
                return_at,
                started: false,
                next_order: join,
                dip,
                manager: 1,
                crm_pending: false,
            });
            heap.push(Reverse((join, i)));
        }
        // Scale rates so that `events` are expected inside the span.
        let scale = opts.events as f64 / weighted_active.max(1.0);
        for c in &mut customers {
            c.rate_per_ms *= scale;
        }
        Generator {
            opts,
            rng,
            customers,
            heap,
            emitted: 0,
            seq: 0,
            pending: VecDeque::new(),
            line_no: 0,
            now: 0,
            key: None,
            managers: (n / 1000).clamp(1, 40),
            crm: BinaryHeap::new(),
            complained: false,
        }
    }

    /// The Kafka key of the line last written by [`Generator::next_line`]: its customer
    /// id, or `None` for a bad record without one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Event time of the newest valid event generated so far (0 before the first).
    pub fn now(&self) -> Ts {
        self.now
    }

    fn cid(i: u32) -> String {
        format!("C{i:07}")
    }

    /// Writes the next line (without newline) into `buf`; `false` when done.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        self.line_no += 1;
        if let Some((at, _, _)) = self.pending.front() {
            if *at <= self.line_no || self.emitted >= self.opts.events {
                let (_, line, key) = self.pending.pop_front().expect("non-empty");
                buf.extend_from_slice(&line);
                self.key = key;
                return true;
            }
        }
        if self.emitted >= self.opts.events {
            return false;
        }
        if self.opts.bad > 0.0 && self.rng.gen_bool(self.opts.bad.min(1.0)) {
            self.bad_line(buf);
            return true;
        }
        loop {
            // The CRM's answers interleave with the customers' events in time order.
            if let Some(&Reverse((tc, i, stage))) = self.crm.peek() {
                if self.heap.peek().is_none_or(|r| tc <= r.0 .0) {
                    self.crm.pop();
                    self.now = self.now.max(tc);
                    self.answer(i, tc, stage, buf);
                    self.emitted += 1;
                    return true;
                }
            }
            let Some(Reverse((t, i))) = self.heap.pop() else {
                return false;
            };
            let c = &self.customers[i as usize];
            if t >= c.churn_at && t < c.return_at {
                if c.return_at != Ts::MAX {
                    self.heap.push(Reverse((c.return_at, i)));
                }
                continue;
            }
            self.now = t;
            self.complained = false;
            self.event(i, t, buf);
            if self.complained {
                self.schedule_answer(i, t);
            }
            let c = &self.customers[i as usize];
            // Gamma gaps of shape 4: the same mean as a Poisson process, a quarter of its
            // variance.
            let mean = 1.0 / c.rate_per_ms.max(1e-15) * c.slowdown(t);
            let gap = Gamma::new(4.0, mean / 4.0)
                .expect("positive")
                .sample(&mut self.rng);
            self.heap.push(Reverse((t + (gap as Ts).max(1_000), i)));
            self.emitted += 1;
            if self.opts.duplicates > 0.0 && self.rng.gen_bool(self.opts.duplicates.min(1.0)) {
                let later = self.line_no + self.rng.gen_range(1..50);
                let pos = self.pending.partition_point(|(at, _, _)| *at <= later);
                self.pending
                    .insert(pos, (later, buf.clone(), self.key.clone()));
            }
            return true;
        }
    }

    fn event(&mut self, i: u32, t: Ts, buf: &mut Vec<u8>) {
        self.seq += 1;
        let id = format!("{:x}-{:010x}", self.opts.seed, self.seq);
        let cid = Self::cid(i);
        self.key = Some(cid.clone());
        let ts = format_rfc3339(t - t % 1000);
        let rng = &mut self.rng;
        let managers = self.managers;
        let c = &mut self.customers[i as usize];
        let head = |buf: &mut Vec<u8>, kind: &str| {
            let _ = write!(
                buf,
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"{kind}","ts":"{ts}""#
            );
        };
        if !c.started {
            c.started = true;
            head(buf, "profile");
            c.manager = rng.gen_range(1..=managers);
            let _ = write!(
                buf,
                r#","account_manager":"AM-{:03}","industry":"{}","region":"{}","segment":"{}"}}"#,
                c.manager,
                INDUSTRIES[rng.gen_range(0..INDUSTRIES.len())],
                REGIONS[rng.gen_range(0..REGIONS.len())],
                SEGMENTS[rng.gen_range(0..SEGMENTS.len())]
            );
            return;
        }
        let near_churn = c.leaving_soon(t);
        let complain_p = if c.complainer && near_churn {
            0.25
        } else if c.complainer {
            0.08
        } else {
            0.01
        };
        let pick = |rng: &mut ChaCha8Rng, pref: u8, n: usize| {
            if rng.gen_bool(0.7) {
                pref as usize
            } else {
                rng.gen_range(0..n)
            }
        };
        let r: f64 = rng.gen();
        // The orders' old share of the mix (18 %) goes to visits, as orders keep their own
        // rhythm (below); the other types keep their shares.
        let r = if (complain_p + 0.02..complain_p + 0.20).contains(&r) {
            1.0
        } else {
            r
        };
        if t >= c.next_order {
            // Mean gap: the share of events that were orders (18 %) at the customer's rate.
            let mean = 1.0 / (0.18 * c.rate_per_ms.max(1e-15)) * c.slowdown(t);
            c.next_order = t + Gamma::new(4.0, mean / 4.0).expect("positive").sample(rng) as Ts;
            head(buf, "order");
            let amount = (c.aov * LogNormal::new(0.0, 0.4).expect("valid").sample(rng) * 100.0)
                .round()
                / 100.0;
            let _ = write!(
                buf,
                r#","amount":{amount:.2},"currency":"CNY","channel":"{}","category":"{}"}}"#,
                CHANNELS[pick(rng, c.channel, CHANNELS.len())],
                CATEGORIES[pick(rng, c.category, CATEGORIES.len())]
            );
        } else if r < complain_p {
            head(buf, "complaint");
            buf.push(b'}');
            self.complained = true;
        } else if r < complain_p + 0.02 {
            head(buf, "complaint_resolved");
            buf.push(b'}');
        } else if r < complain_p + 0.215 {
            head(buf, "refund");
            let _ = write!(
                buf,
                r#","amount":{:.2}}}"#,
                (c.aov * 0.3 * 100.0).round() / 100.0
            );
        } else if r < complain_p + 0.30 {
            head(buf, "campaign");
            // One draw, as `gen_bool(0.2)` makes it (Bernoulli: u64 < p × 2^64), so the
            // conversions and every later draw stay what they were before participations
            // were generated: 20 % converted, 30 % participated, 50 % touched.
            let v: u64 = rng.gen();
            let action = if v < (0.2 * 18_446_744_073_709_551_616.0) as u64 {
                "converted"
            } else if v < (0.5 * 18_446_744_073_709_551_616.0) as u64 {
                "participated"
            } else {
                "touched"
            };
            let _ = write!(
                buf,
                r#","campaign_id":"CMP-{:02}","action":"{}","cost":{:.2}}}"#,
                rng.gen_range(1..=12),
                action,
                rng.gen_range(0.5..20.0)
            );
        } else if r < complain_p + 0.35 {
            head(buf, "survey");
            let drift = if near_churn || c.slowdown(t) > 1.0 {
                -1.5
            } else {
                0.0
            };
            let s = (c.satisfaction + drift + rng.gen_range(-0.7..0.7))
                .clamp(1.0, 5.0)
                .round();
            let nps = ((s - 1.0) * 2.5 + rng.gen_range(-1.0..1.0))
                .clamp(0.0, 10.0)
                .round();
            let _ = write!(buf, r#","satisfaction":{s},"nps":{nps}}}"#);
        } else if r < complain_p + 0.36 {
            head(buf, "profile");
            c.manager = rng.gen_range(1..=managers);
            let _ = write!(buf, r#","account_manager":"AM-{:03}"}}"#, c.manager);
        } else if r < complain_p + 0.36005 {
            head(buf, "erase");
            buf.push(b'}');
        } else {
            head(buf, "visit");
            let _ = write!(
                buf,
                r#","channel":"{}"}}"#,
                CHANNELS[pick(rng, c.channel, CHANNELS.len())]
            );
        }
    }

    /// Plans the CRM's answer to a complaint at `t`: acknowledged within 2–20 hours
    /// (two in three), 26 hours to 5 days later (one in five), or never.
    fn schedule_answer(&mut self, i: u32, t: Ts) {
        let c = &mut self.customers[i as usize];
        if c.crm_pending {
            return;
        }
        let r: f64 = self.rng.gen();
        let hours = if r < 0.65 {
            self.rng.gen_range(2.0..20.0)
        } else if r < 0.85 {
            self.rng.gen_range(26.0..120.0)
        } else {
            return;
        };
        c.crm_pending = true;
        self.crm
            .push(Reverse((t + (hours * 3_600_000.0) as Ts, i, 0)));
    }

    /// Writes a CRM answer: `acknowledged` (and plans the closing one 1–72 hours later),
    /// or `done` (six in seven, with an outcome code) or `dismissed`.
    fn answer(&mut self, i: u32, t: Ts, stage: u8, buf: &mut Vec<u8>) {
        self.seq += 1;
        let id = format!("{:x}-{:010x}", self.opts.seed, self.seq);
        let cid = Self::cid(i);
        let ts = format_rfc3339(t - t % 1000);
        let manager = self.customers[i as usize].manager;
        let status = if stage == 0 {
            let later = t + (self.rng.gen_range(1.0..72.0) * 3_600_000.0) as Ts;
            self.crm.push(Reverse((later, i, 1)));
            "acknowledged"
        } else {
            self.customers[i as usize].crm_pending = false;
            if self.rng.gen_bool(1.0 / 7.0) {
                "dismissed"
            } else {
                "done"
            }
        };
        let _ = write!(
            buf,
            r#"{{"event_id":"{id}","customer_id":"{cid}","type":"intervention","ts":"{ts}","status":"{status}","actor":"AM-{manager:03}""#
        );
        if status == "done" {
            const OUTCOMES: [&str; 3] = ["retention_offer", "service_fixed", "no_answer"];
            let o = OUTCOMES[self.rng.gen_range(0..OUTCOMES.len())];
            let _ = write!(buf, r#","outcome":"{o}""#);
        }
        buf.push(b'}');
        self.key = Some(cid);
    }

    fn bad_line(&mut self, buf: &mut Vec<u8>) {
        self.seq += 1;
        let id = format!("{:x}-{:010x}", self.opts.seed, self.seq);
        let cid = Self::cid(self.rng.gen_range(0..self.customers.len() as u32));
        let ts =
            format_rfc3339(self.now.max(self.opts.start) - self.now.max(self.opts.start) % 1000);
        let variant = self.rng.gen_range(0..8);
        // Variants 2 (no customer_id) and 6 (not an object) have no key; the others keep
        // the customer's, as an upstream producer that knows its customer would.
        self.key = (![2, 6].contains(&variant)).then(|| cid.clone());
        let line = match variant {
            0 => format!(
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"order","ts":"{ts}","amount":-120.5}}"#
            ),
            1 => format!(
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"teleport","ts":"{ts}"}}"#
            ),
            2 => format!(r#"{{"event_id":"{id}","type":"visit","ts":"{ts}"}}"#),
            3 => format!(
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"visit","ts":"last tuesday"}}"#
            ),
            4 => format!(
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"order","ts":"{ts}","amount":"lots"}}"#
            ),
            5 => format!(r#"{{"event_id":"{id}","customer_id":"{cid}","type":"order","ts":"#),
            6 => "[1,2,3]".to_string(),
            _ => format!(
                r#"{{"event_id":"{id}","customer_id":"{cid}","type":"survey","ts":"{ts}","satisfaction":9}}"#
            ),
        };
        buf.extend_from_slice(line.as_bytes());
    }
}

#[cfg(test)]
mod tests;
