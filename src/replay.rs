//! `churnwatch replay`: the core over a file of events, with no broker. Deterministic:
//! the same input gives the same output, byte for byte.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::core::output::{Output, OutputKind};
use crate::core::time::Ts;
use crate::core::{Ctx, Outcome, Processor, RejectReason, Settings, Source};

/// What to replay and where to write.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Input JSONL (`-` = stdin).
    pub input: PathBuf,
    /// Alerts output JSONL (`-` = stdout).
    pub output: PathBuf,
    /// Final profiles, sorted by customer id: as of the end of the replay (the final
    /// watermark, which `until` advances), as the look-up shows them.
    pub profiles: Option<PathBuf>,
    /// Write `profiles` as last published instead: each as of its customer's clock (last
    /// event or fired deadline), like the compacted profiles topic.
    pub profiles_as_published: bool,
    /// Dead letters.
    pub dead_letters: Option<PathBuf>,
    /// Write the population report (JSON) here, as of the final watermark.
    pub report: Option<PathBuf>,
    /// Advance time to this instant at the end (and use it as "now" for the skew check).
    pub until: Option<Ts>,
    /// Print alerts in one-line form on stderr.
    pub print: bool,
    /// Print a progress line on stderr every few seconds.
    pub progress: bool,
}

/// Counts of a finished replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Non-blank input lines.
    pub lines: u64,
    /// Applied events.
    pub applied: u64,
    /// Erase requests.
    pub erased: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Rejected lines.
    pub rejected: u64,
    /// Customers at the end.
    pub customers: u64,
    /// Lines written to the output.
    pub outputs: u64,
}

/// Replay failures (I/O only: bad input is data, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Cannot open a file.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

fn open_in(p: &Path) -> Result<Box<dyn BufRead>, ReplayError> {
    if p.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(1 << 20, io::stdin())));
    }
    let f = File::open(p).map_err(|source| ReplayError::Open {
        path: p.into(),
        source,
    })?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

fn open_out(p: &Path) -> Result<Box<dyn Write>, ReplayError> {
    if p.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 20, io::stdout())));
    }
    let f = File::create(p).map_err(|source| ReplayError::Open {
        path: p.into(),
        source,
    })?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

/// Reads one line into `buf` without ever holding more than `max + 1` bytes of it (the
/// rest of an oversized line is skipped, and its length is still counted). Returns the
/// line's full length, or `None` at end of input.
pub(crate) fn read_line_bounded(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (part, done) = match memchr(chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        total += part.len();
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(total));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Runs a replay.
pub fn replay(settings: Arc<Settings>, opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let mut input = open_in(&opts.input)?;
    let mut output = open_out(&opts.output)?;
    let mut dead = match &opts.dead_letters {
        Some(p) => Some(open_out(p)?),
        None => None,
    };
    let topic = match opts.input.file_name() {
        Some(n) if opts.input.as_os_str() != "-" => format!("file:{}", n.to_string_lossy()),
        _ => "stdin".to_string(),
    };
    let max = settings.limits.max_message_bytes;
    let mut p = Processor::new(settings);
    let ctx = Ctx {
        now: opts.until,
        emitted_at: None,
    };
    let mut sum = ReplaySummary::default();
    let mut line = Vec::with_capacity(4096);
    let mut outs: Vec<Output> = Vec::with_capacity(16);
    let mut json = Vec::with_capacity(4096);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut offset: i64 = -1;
    let mut stderr = io::stderr();
    while let Some(len) = read_line_bounded(&mut *input, &mut line, max)? {
        offset += 1;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) && len <= max {
            continue;
        }
        sum.lines += 1;
        let src = Source {
            topic: &topic,
            partition: 0,
            offset,
        };
        let outcome = if len > max {
            // Only the first `max + 1` bytes were kept while reading.
            p.reject_too_large(&line, len, src, &ctx, &mut outs);
            Outcome::Rejected(RejectReason::TooLarge)
        } else {
            p.process(&line, src, &ctx, &mut outs)
        };
        match outcome {
            Outcome::Applied => sum.applied += 1,
            Outcome::Erased => sum.erased += 1,
            Outcome::Duplicate | Outcome::AlreadyApplied => sum.duplicates += 1,
            Outcome::Rejected(_) => sum.rejected += 1,
        }
        write_outputs(
            &mut outs,
            &mut json,
            &mut output,
            dead.as_deref_mut(),
            opts.print,
            &mut sum,
        )?;
        if opts.progress && sum.lines % 65_536 == 0 && last_progress.elapsed().as_secs() >= 2 {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let _ = writeln!(
                stderr,
                "replay: {} lines, {} customers, {:.0} lines/s",
                sum.lines,
                p.customers(),
                sum.lines as f64 / secs
            );
        }
    }
    if let Some(until) = opts.until {
        p.advance_to(until, &ctx, &mut outs);
        write_outputs(
            &mut outs,
            &mut json,
            &mut output,
            dead.as_deref_mut(),
            opts.print,
            &mut sum,
        )?;
    }
    output.flush()?;
    if let Some(d) = dead.as_mut() {
        d.flush()?;
    }
    sum.customers = p.customers() as u64;
    if let Some(path) = &opts.profiles {
        let mut w = open_out(path)?;
        // As of the end, like a look-up: every deadline up to the watermark has fired, so
        // the tiers and warnings are current too. The published form is for comparing
        // with the profiles topic.
        let profiles = if opts.profiles_as_published {
            p.profiles_sorted()
        } else {
            p.profiles_as_of(p.watermark())
        };
        for prof in profiles {
            json.clear();
            Output::Profile(Box::new(prof)).write_json(&mut json);
            json.push(b'\n');
            w.write_all(&json)?;
        }
        w.flush()?;
    }
    if let Some(path) = &opts.report {
        let as_of = p.watermark().or(p.stream_time()).unwrap_or(0);
        let report = p.report(as_of).finish(p.settings());
        let mut w = open_out(path)?;
        serde_json::to_writer_pretty(&mut w, &report).map_err(io::Error::from)?;
        w.write_all(b"\n")?;
        w.flush()?;
    }
    if opts.progress {
        let s = p.stats();
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let rejected: Vec<String> = RejectReason::ALL
            .iter()
            .filter(|r| s.rejected[r.index()] > 0)
            .map(|r| format!("{} {}", r.code(), s.rejected[r.index()]))
            .collect();
        let produced: Vec<String> = OutputKind::ALL
            .iter()
            .filter(|k| s.outputs[**k as usize] > 0)
            .map(|k| format!("{} {}", k.name(), s.outputs[*k as usize]))
            .collect();
        let _ = writeln!(
            stderr,
            "replay: {} lines in {:.2} s ({:.0}/s): {} applied, {} erase, {} duplicates, {} rejected{}; {} customers, {} deadlines fired; outputs: {}",
            sum.lines,
            secs,
            sum.lines as f64 / secs,
            sum.applied,
            sum.erased,
            sum.duplicates,
            sum.rejected,
            if rejected.is_empty() { String::new() } else { format!(" ({})", rejected.join(", ")) },
            sum.customers,
            s.timers_fired,
            if produced.is_empty() { "none".into() } else { produced.join(", ") }
        );
    }
    Ok(sum)
}

fn write_outputs(
    outs: &mut Vec<Output>,
    json: &mut Vec<u8>,
    output: &mut dyn Write,
    dead: Option<&mut (dyn Write + 'static)>,
    print: bool,
    sum: &mut ReplaySummary,
) -> io::Result<()> {
    let mut dead = dead;
    for o in outs.drain(..) {
        if print {
            if let Some(l) = crate::pretty::line(&o) {
                eprintln!("{l}");
            }
        }
        json.clear();
        o.write_json(json);
        json.push(b'\n');
        match o.kind() {
            OutputKind::DeadLetter => {
                if let Some(d) = dead.as_deref_mut() {
                    d.write_all(json)?;
                }
            }
            OutputKind::Profile => {}
            _ => {
                output.write_all(json)?;
                sum.outputs += 1;
            }
        }
    }
    Ok(())
}
