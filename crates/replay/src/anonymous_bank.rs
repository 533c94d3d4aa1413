//! Reader for the "Anonymous Bank" call-center trace (Technion SEELab, August 1999; see
//! `shared/data/README.md`): one CSV row per call.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use chrono::NaiveDate;
use switchboard_core::event::{MAX_EVENT_ID_LEN, MAX_PRIORITY};
use switchboard_core::{
    AgentId, CallType, EndReason, EventKind, ExternalCallId, IncomingEvent, QueueId,
};

use crate::{ReplayError, Trace, TraceCall};

/// The Anonymous Bank service types, used as queue ids (`type` column): `PS` regular, `PE`
/// regular in English, `IN` internet, `NE` stock exchange, `NW` prospective customer, `TT`
/// callback request.
pub const ANONYMOUS_BANK_QUEUES: [&str; 6] = ["PS", "PE", "IN", "NE", "NW", "TT"];

/// Skip reason: `outcome` is `PHANTOM` (a record to ignore, per the data README).
pub const SKIP_PHANTOM: &str = "phantom";
/// Skip reason: a call id (`date/call_id/vru_entry`) already seen earlier in the file.
pub const SKIP_DUPLICATE_CALL_ID: &str = "duplicate_call_id";
/// Skip reason: the row has a different number of fields than the header.
pub const SKIP_MALFORMED_ROW: &str = "malformed_row";
/// Skip reason: a field needed by the mapping is not valid UTF-8.
pub const SKIP_INVALID_UTF8: &str = "invalid_utf8";
/// Skip reason: `date` is not `YYYY-MM-DD`.
pub const SKIP_BAD_DATE: &str = "bad_date";
/// Skip reason: a time of day needed by the mapping is not `H:MM:SS`.
pub const SKIP_BAD_TIME: &str = "bad_time";
/// Skip reason: `priority` is not an integer from 0 to 100 (Switchboard's caller priorities).
pub const SKIP_BAD_PRIORITY: &str = "bad_priority";
/// Skip reason: `ser_time` is not a non-negative integer number of seconds.
pub const SKIP_BAD_NUMBER: &str = "bad_number";
/// Skip reason: the call id (`date/call_id/vru_entry`), the queue (`type`) or the agent
/// (`server`) is not a valid Switchboard id (see `switchboard_core::ids`).
pub const SKIP_BAD_ID: &str = "bad_id";
/// Skip reason: `outcome` is not `AGENT`, `HANG` or `PHANTOM`.
pub const SKIP_UNKNOWN_OUTCOME: &str = "unknown_outcome";

const DAY_S: i64 = 24 * 3600;
const HALF_DAY_S: i64 = 12 * 3600;

/// Columns the mapping reads, located by header name.
struct Columns {
    call_id: usize,
    priority: usize,
    kind: usize,
    date: usize,
    vru_entry: usize,
    vru_exit: usize,
    q_start: usize,
    q_exit: usize,
    outcome: usize,
    ser_start: usize,
    ser_time: usize,
    server: usize,
    len: usize,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Self, ReplayError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_ascii() == name.as_bytes())
                .ok_or_else(|| ReplayError::MissingColumn(name.to_string()))
        };
        Ok(Columns {
            call_id: find("call_id")?,
            priority: find("priority")?,
            kind: find("type")?,
            date: find("date")?,
            vru_entry: find("vru_entry")?,
            vru_exit: find("vru_exit")?,
            q_start: find("q_start")?,
            q_exit: find("q_exit")?,
            outcome: find("outcome")?,
            ser_start: find("ser_start")?,
            ser_time: find("ser_time")?,
            server: find("server")?,
            len: header.len(),
        })
    }
}

/// Reads an Anonymous Bank CSV (header `vru+line,call_id,customer_id,priority,type,date,
/// vru_entry,vru_exit,vru_time,q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server`)
/// into a [`Trace`], one [`TraceCall`] per usable row, in file order.
///
/// The mapping (from the replay issue and the data README), row by row:
///
/// * `PHANTOM` rows are skipped (reason [`SKIP_PHANTOM`]); rows that fail to parse are skipped
///   and counted by reason (the `SKIP_*` constants) — one bad row never aborts the file.
/// * Times are `date` + time of day (`H:MM:SS`, taken as UTC); a time more than 12 h before
///   `vru_entry` is on the next day (calls cross midnight).
/// * The call id is `date/call_id/vru_entry`, e.g. `1999-08-01/43678/0:10:10` (`call_id` alone
///   repeats). A call id seen before in the file skips the row ([`SKIP_DUPLICATE_CALL_ID`]).
/// * `call_initiated` (`call_type` `voice`) at `vru_entry`; if `q_start` is not `0:00:00`, the
///   call is *queued*: `call_queued` at `q_start` to queue `type` with the row's `priority`.
/// * `AGENT`: `call_routed` and `call_answered` (agent = `server`, taken as is, even
///   `NO_SERVER`) at `q_exit` when queued, else at `ser_start` (or `vru_exit` when `ser_start`
///   is `0:00:00`); then `call_ended` `completed` at the answer time + `ser_time` seconds.
/// * `HANG`: `call_ended` `abandoned` at `q_exit` when queued, else at `vru_exit`.
/// * Rows whose times run backwards (e.g. `vru_exit` before `vru_entry`) are kept as they are;
///   the engine marks such events out of order.
///
/// Event ids are `"<call id>#<n>"` with `n` the event's index within the call.
///
/// Errors only for an unreadable input or header ([`ReplayError`]); see
/// [`Trace`] for the row accounting invariant.
pub fn read_anonymous_bank<R: Read>(r: R) -> Result<Trace, ReplayError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(r);
    let cols = Columns::from_header(reader.byte_headers()?)?;

    let mut trace = Trace::default();
    let mut seen: HashSet<ExternalCallId> = HashSet::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record)? {
        trace.rows += 1;
        match map_row(&cols, &record) {
            Ok(Some(call)) => {
                if seen.insert(call.call_id.clone()) {
                    trace.calls.push(call);
                } else {
                    skip(&mut trace.skipped, SKIP_DUPLICATE_CALL_ID);
                }
            }
            Ok(None) => skip(&mut trace.skipped, SKIP_PHANTOM),
            Err(reason) => skip(&mut trace.skipped, reason),
        }
    }
    Ok(trace)
}

fn skip(skipped: &mut BTreeMap<String, u64>, reason: &str) {
    *skipped.entry(reason.to_string()).or_insert(0) += 1;
}

/// Maps one row: `Ok(None)` for PHANTOM, `Err(reason)` for a bad row.
fn map_row(cols: &Columns, rec: &csv::ByteRecord) -> Result<Option<TraceCall>, &'static str> {
    if rec.len() != cols.len {
        return Err(SKIP_MALFORMED_ROW);
    }
    let field = |i: usize| -> Result<&str, &'static str> {
        std::str::from_utf8(&rec[i])
            .map(str::trim)
            .map_err(|_| SKIP_INVALID_UTF8)
    };

    let outcome = field(cols.outcome)?;
    let served = match outcome {
        "PHANTOM" => return Ok(None),
        "AGENT" => true,
        "HANG" => false,
        _ => return Err(SKIP_UNKNOWN_OUTCOME),
    };

    let date_s = field(cols.date)?;
    let date = NaiveDate::parse_from_str(date_s, "%Y-%m-%d").map_err(|_| SKIP_BAD_DATE)?;
    let midnight_ms = date
        .and_hms_opt(0, 0, 0)
        .ok_or(SKIP_BAD_DATE)?
        .and_utc()
        .timestamp_millis();

    let entry_s = field(cols.vru_entry)?;
    let entry = parse_time_of_day(entry_s).ok_or(SKIP_BAD_TIME)?;
    // Absolute time (ms) of a time of day relative to the call's entry into the IVR.
    let at = |tod: i64| -> i64 {
        let day_shift = if tod < entry - HALF_DAY_S { DAY_S } else { 0 };
        midnight_ms + (tod + day_shift) * 1000
    };
    let time = |i: usize| -> Result<i64, &'static str> {
        parse_time_of_day(field(i)?).ok_or(SKIP_BAD_TIME)
    };

    let call_id = format!("{date_s}/{}/{entry_s}", field(cols.call_id)?);
    let call_id = ExternalCallId::parse(&call_id).map_err(|_| SKIP_BAD_ID)?;
    let q_start = time(cols.q_start)?;
    let queued = q_start != 0;

    let mut kinds: Vec<(i64, EventKind)> = Vec::with_capacity(5);
    kinds.push((
        at(entry),
        EventKind::CallInitiated {
            call_type: CallType::Voice,
            queue_id: None,
            from: None,
            to: None,
            priority: None,
        },
    ));
    if queued {
        let priority: u32 = field(cols.priority)?
            .parse()
            .ok()
            .filter(|p| u64::from(*p) <= MAX_PRIORITY)
            .ok_or(SKIP_BAD_PRIORITY)?;
        let queue_id = QueueId::parse(field(cols.kind)?).map_err(|_| SKIP_BAD_ID)?;
        kinds.push((
            at(q_start),
            EventKind::CallQueued {
                queue_id,
                priority: Some(priority),
            },
        ));
    }
    if served {
        let answer_tod = if queued {
            time(cols.q_exit)?
        } else {
            match time(cols.ser_start)? {
                0 => time(cols.vru_exit)?,
                s => s,
            }
        };
        let ser_time: u32 = field(cols.ser_time)?.parse().map_err(|_| SKIP_BAD_NUMBER)?;
        let answered = at(answer_tod);
        let agent_id = AgentId::parse(field(cols.server)?).map_err(|_| SKIP_BAD_ID)?;
        kinds.push((
            answered,
            EventKind::CallRouted {
                agent_id,
                routing_time: None,
                ring_group: Vec::new(),
                targets: Vec::new(),
            },
        ));
        kinds.push((
            answered,
            EventKind::CallAnswered {
                agent_id: None,
                wait_time: None,
            },
        ));
        kinds.push((
            answered + i64::from(ser_time) * 1000,
            EventKind::CallEnded {
                end_reason: EndReason::Completed,
                duration: None,
            },
        ));
    } else {
        let end_tod = if queued {
            time(cols.q_exit)?
        } else {
            time(cols.vru_exit)?
        };
        kinds.push((
            at(end_tod),
            EventKind::CallEnded {
                end_reason: EndReason::Abandoned,
                duration: None,
            },
        ));
    }

    // The longest event id ("<call id>#4") must fit the server's limit too.
    if call_id.as_str().len() + 2 > MAX_EVENT_ID_LEN {
        return Err(SKIP_BAD_ID);
    }
    let events = kinds
        .into_iter()
        .enumerate()
        .map(|(n, (timestamp, kind))| IncomingEvent {
            event_id: Some(format!("{call_id}#{n}")),
            call_id: call_id.clone(),
            timestamp: Some(timestamp),
            kind,
        })
        .collect();
    Ok(Some(TraceCall { call_id, events }))
}

/// Parses a time of day `H:MM:SS` (hours 0–23, one or two digits) into seconds since midnight.
fn parse_time_of_day(s: &str) -> Option<i64> {
    let mut parts = s.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let num = |p: &str, max: i64, widths: &[usize]| -> Option<i64> {
        if !widths.contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<i64>().ok().filter(|v| *v <= max)
    };
    Some(num(h, 23, &[1, 2])? * 3600 + num(m, 59, &[2])? * 60 + num(sec, 59, &[2])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interleave;
    use switchboard_core::format_rfc3339;

    const HEADER: &str = "vru+line,call_id,customer_id,priority,type,date,vru_entry,vru_exit,vru_time,q_start,q_exit,q_time,outcome,ser_start,ser_exit,ser_time,server\n";

    fn read(rows: &str) -> Trace {
        read_anonymous_bank(format!("{HEADER}{rows}").as_bytes()).unwrap()
    }

    /// (type, RFC 3339 timestamp) of each event of the only call.
    fn shape(t: &Trace) -> Vec<(&'static str, String)> {
        assert_eq!(t.calls.len(), 1, "{t:?}");
        t.calls[0]
            .events
            .iter()
            .map(|e| (e.kind.type_name(), format_rfc3339(e.timestamp.unwrap())))
            .collect()
    }

    fn s(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(a, b)| (*a, b.to_string())).collect()
    }

    #[test]
    fn time_of_day_parsing() {
        assert_eq!(parse_time_of_day("0:00:00"), Some(0));
        assert_eq!(parse_time_of_day("0:10:10"), Some(610));
        assert_eq!(parse_time_of_day("23:59:59"), Some(86_399));
        assert_eq!(parse_time_of_day("09:05:01"), Some(9 * 3600 + 301));
        for bad in [
            "",
            "24:00:00",
            "1:60:00",
            "1:00:60",
            "1:0:00",
            "1:00",
            "1:00:00:00",
            "a:00:00",
            "+1:00:00",
        ] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn call_id_format_and_event_ids() {
        let t = read("AA0204,43678,0,0,PS,1999-08-01,0:10:10,0:10:27,17,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(t.rows, 1);
        let c = &t.calls[0];
        assert_eq!(c.call_id.as_str(), "1999-08-01/43678/0:10:10");
        for (n, e) in c.events.iter().enumerate() {
            assert_eq!(e.call_id, c.call_id);
            assert_eq!(e.event_id, Some(format!("1999-08-01/43678/0:10:10#{n}")));
        }
        let json = serde_json::to_value(&c.events[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": "1999-08-01/43678/0:10:10#0",
                "type": "call_initiated",
                "call_id": "1999-08-01/43678/0:10:10",
                "timestamp": "1999-08-01T00:10:10Z",
                "call_type": "voice"
            })
        );
    }

    #[test]
    fn unqueued_hang_ends_abandoned_at_vru_exit() {
        let t = read("AA0204,43678,0,0,PS,1999-08-01,0:10:10,0:10:27,17,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-01T00:10:10Z"),
                ("call_ended", "1999-08-01T00:10:27Z"),
            ])
        );
        assert_eq!(
            t.calls[0].events[1].kind,
            EventKind::CallEnded {
                end_reason: EndReason::Abandoned,
                duration: None
            }
        );
    }

    #[test]
    fn queued_hang_ends_abandoned_at_q_exit() {
        let t = read("AA0101,100,0,2,NW,1999-08-03,10:00:00,10:00:20,20,10:00:20,10:02:00,100,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-03T10:00:00Z"),
                ("call_queued", "1999-08-03T10:00:20Z"),
                ("call_ended", "1999-08-03T10:02:00Z"),
            ])
        );
        let ev = &t.calls[0].events;
        assert_eq!(
            ev[1].kind,
            EventKind::CallQueued {
                queue_id: QueueId::parse("NW").unwrap(),
                priority: Some(2)
            }
        );
        assert_eq!(
            ev[2].kind,
            EventKind::CallEnded {
                end_reason: EndReason::Abandoned,
                duration: None
            }
        );
    }

    #[test]
    fn queued_agent_answers_at_q_exit() {
        let t = read("AA0101,200,123,1,PS,1999-08-02,9:00:00,9:00:30,30,9:00:30,9:01:40,70,AGENT,9:01:39,9:03:20,101,MICHAL\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-02T09:00:00Z"),
                ("call_queued", "1999-08-02T09:00:30Z"),
                ("call_routed", "1999-08-02T09:01:40Z"),
                ("call_answered", "1999-08-02T09:01:40Z"),
                ("call_ended", "1999-08-02T09:03:21Z"), // q_exit + ser_time 101 s
            ])
        );
        let ev = &t.calls[0].events;
        assert_eq!(
            ev[1].kind,
            EventKind::CallQueued {
                queue_id: QueueId::parse("PS").unwrap(),
                priority: Some(1)
            }
        );
        assert_eq!(
            ev[2].kind,
            EventKind::CallRouted {
                agent_id: AgentId::parse("MICHAL").unwrap(),
                routing_time: None,
                ring_group: Vec::new(),
                targets: Vec::new(),
            }
        );
        assert_eq!(
            ev[4].kind,
            EventKind::CallEnded {
                end_reason: EndReason::Completed,
                duration: None
            }
        );
    }

    #[test]
    fn unqueued_agent_answers_at_ser_start() {
        let t = read("AA0101,300,0,0,TT,1999-08-02,9:00:00,9:00:30,30,0:00:00,0:00:00,0,AGENT,9:00:31,9:01:00,29,DORIT\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-02T09:00:00Z"),
                ("call_routed", "1999-08-02T09:00:31Z"),
                ("call_answered", "1999-08-02T09:00:31Z"),
                ("call_ended", "1999-08-02T09:01:00Z"),
            ])
        );
    }

    #[test]
    fn unqueued_agent_without_ser_start_answers_at_vru_exit() {
        let t = read("AA0101,301,0,0,PS,1999-08-02,9:00:00,9:00:30,30,0:00:00,0:00:00,0,AGENT,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-02T09:00:00Z"),
                ("call_routed", "1999-08-02T09:00:30Z"),
                ("call_answered", "1999-08-02T09:00:30Z"),
                ("call_ended", "1999-08-02T09:00:30Z"),
            ])
        );
        assert_eq!(
            t.calls[0].events[1].kind,
            EventKind::CallRouted {
                agent_id: AgentId::parse("NO_SERVER").unwrap(),
                routing_time: None,
                ring_group: Vec::new(),
                targets: Vec::new(),
            }
        );
    }

    #[test]
    fn midnight_crossing() {
        // Enters at 23:50:00, queues at 23:58:00, leaves the queue at 0:05:00 the next day and
        // is served for 120 s.
        let t = read("AA0101,400,0,2,PS,1999-08-01,23:50:00,23:58:00,480,23:58:00,0:05:00,420,AGENT,0:04:59,0:07:00,120,AVI\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-01T23:50:00Z"),
                ("call_queued", "1999-08-01T23:58:00Z"),
                ("call_routed", "1999-08-02T00:05:00Z"),
                ("call_answered", "1999-08-02T00:05:00Z"),
                ("call_ended", "1999-08-02T00:07:00Z"),
            ])
        );
        // Month end rolls over into the next month.
        let t = read("AA0101,401,0,0,PS,1999-08-31,23:59:50,0:00:10,20,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-31T23:59:50Z"),
                ("call_ended", "1999-09-01T00:00:10Z"),
            ])
        );
    }

    #[test]
    fn exactly_twelve_hours_before_is_same_day() {
        // Entry 12:00:01, exit 0:00:01 is exactly 12 h earlier → same day (it runs backwards);
        // only *more* than 12 h earlier moves a time to the next day.
        let t = read("AA0101,402,0,0,PS,1999-08-01,12:00:01,0:00:01,0,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(shape(&t)[1].1, "1999-08-01T00:00:01Z");
        let t = read("AA0101,403,0,0,PS,1999-08-01,12:00:02,0:00:01,0,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        assert_eq!(shape(&t)[1].1, "1999-08-02T00:00:01Z");
    }

    #[test]
    fn backwards_row_is_kept_as_is() {
        // A real row: vru_exit (and q_start) before vru_entry.
        let t = read("AA0107,7039,0,2,PS,1999-08-01,12:04:42,12:03:15,0,12:03:15,12:04:56,101,AGENT,12:04:55,12:05:56,61,ZOHARI\n");
        assert_eq!(t.skipped_count(), 0);
        assert_eq!(
            shape(&t),
            s(&[
                ("call_initiated", "1999-08-01T12:04:42Z"),
                ("call_queued", "1999-08-01T12:03:15Z"), // earlier than its predecessor
                ("call_routed", "1999-08-01T12:04:56Z"),
                ("call_answered", "1999-08-01T12:04:56Z"),
                ("call_ended", "1999-08-01T12:05:57Z"),
            ])
        );
    }

    #[test]
    fn phantom_bad_and_duplicate_rows_are_skipped_and_counted() {
        let rows = concat!(
            "AA0101,1,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,2,0,0,PS,1999-08-01,8:00:00,8:00:10,10,8:00:10,8:00:20,10,PHANTOM,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,1,0,0,PS,1999-08-01,8:00:00,8:00:11,11,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,3,0,0,PS,1999-08-01,8:0x:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,4,0,0,PS,1999-13-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,5,0,x,PS,1999-08-01,8:00:00,8:00:10,10,8:00:10,8:00:20,10,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,6,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,AGENT,8:00:10,8:00:20,-1,ANN\n",
            "AA0101,7,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,BUSY,0:00:00,0:00:00,0,NO_SERVER\n",
            "AA0101,8,0,0,PS,1999-08-01,8:00:00\n",
            "AA0101,9,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
        );
        let t = read(rows);
        assert_eq!(t.rows, 10);
        let ids: Vec<_> = t.calls.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["1999-08-01/1/8:00:00", "1999-08-01/9/8:00:00"]);
        let expected: BTreeMap<String, u64> = [
            (SKIP_PHANTOM, 1),
            (SKIP_DUPLICATE_CALL_ID, 1),
            (SKIP_BAD_TIME, 1),
            (SKIP_BAD_DATE, 1),
            (SKIP_BAD_PRIORITY, 1),
            (SKIP_BAD_NUMBER, 1),
            (SKIP_UNKNOWN_OUTCOME, 1),
            (SKIP_MALFORMED_ROW, 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(t.skipped, expected);
        assert_eq!(t.calls.len() as u64 + t.skipped_count(), t.rows);
        // The first occurrence of a duplicated id wins.
        assert_eq!(
            format_rfc3339(t.calls[0].events[1].timestamp.unwrap()),
            "1999-08-01T08:00:10Z"
        );
    }

    #[test]
    fn rows_the_server_would_refuse_are_skipped() {
        let rows = concat!(
            // priority above Switchboard's 100
            "AA0101,1,0,101,PS,1999-08-01,8:00:00,8:00:10,10,8:00:10,8:00:20,10,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            // agent id with a space
            "AA0101,2,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,AGENT,8:00:10,8:00:20,10,A B\n",
            // queue id with a space
            "AA0101,3,0,1,P S,1999-08-01,8:00:00,8:00:10,10,8:00:10,8:00:20,10,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            // call id with a space
            "AA0101,4 4,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
        );
        let t = read(rows);
        assert!(t.calls.is_empty(), "{:?}", t.calls);
        assert_eq!(t.skipped.get(SKIP_BAD_PRIORITY), Some(&1));
        assert_eq!(t.skipped.get(SKIP_BAD_ID), Some(&3));
    }

    #[test]
    fn invalid_utf8_row_is_skipped() {
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(b"AA0101,1\xff,0,0,PS,1999-08-01,8:00:00,8:00:10,10,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n");
        let t = read_anonymous_bank(&input[..]).unwrap();
        assert_eq!(t.rows, 1);
        assert_eq!(t.skipped.get(SKIP_INVALID_UTF8), Some(&1));
    }

    #[test]
    fn missing_column_is_an_error() {
        let err = read_anonymous_bank("a,b,c\n1,2,3\n".as_bytes()).unwrap_err();
        assert!(
            matches!(err, ReplayError::MissingColumn(ref c) if c == "call_id"),
            "{err}"
        );
        assert!(read_anonymous_bank("".as_bytes()).is_err());
    }

    #[test]
    fn interleave_real_shaped_rows() {
        let rows = concat!(
            // call A: queued, served, long service
            "AA0101,1,0,2,PS,1999-08-01,8:00:00,8:00:10,10,8:00:10,8:00:40,30,AGENT,8:00:39,8:05:00,260,ANN\n",
            // call B: enters later, hangs up early in the IVR
            "AA0101,2,0,0,IN,1999-08-01,8:00:05,8:00:20,15,0:00:00,0:00:00,0,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
            // call C: runs backwards (q_start before vru_entry)
            "AA0107,7039,0,2,PS,1999-08-01,8:00:30,8:00:15,0,8:00:15,8:00:50,35,HANG,0:00:00,0:00:00,0,NO_SERVER\n",
        );
        let t = read(rows);
        let out = interleave(&t.calls);
        let got: Vec<_> = out.iter().map(|e| e.event_id.as_deref().unwrap()).collect();
        assert_eq!(
            got,
            [
                "1999-08-01/1/8:00:00#0",    // 8:00:00
                "1999-08-01/2/8:00:05#0",    // 8:00:05
                "1999-08-01/1/8:00:00#1",    // 8:00:10
                "1999-08-01/2/8:00:05#1",    // 8:00:20
                "1999-08-01/7039/8:00:30#0", // 8:00:30
                "1999-08-01/7039/8:00:30#1", // 8:00:15, out of order, right after its predecessor
                "1999-08-01/1/8:00:00#2",    // 8:00:40
                "1999-08-01/1/8:00:00#3",    // 8:00:40
                "1999-08-01/7039/8:00:30#2", // 8:00:50
                "1999-08-01/1/8:00:00#4",    // 8:05:00
            ]
        );
    }

    /// The real data file (days 1–15 of August 1999).
    #[test]
    fn real_file() {
        const PATH: &str = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/anonymous-bank/calls-1999-08-01_15.csv"
        );
        let file = std::fs::File::open(PATH).unwrap_or_else(|e| {
            panic!("cannot open {PATH}: {e}; this test reads the Anonymous Bank trace from the repository's sibling shared/data/ (see shared/data/README.md)")
        });
        let t = read_anonymous_bank(std::io::BufReader::new(file)).unwrap();
        assert_eq!(t.rows, 23_668, "data rows per the data README");
        assert_eq!(t.calls.len() as u64 + t.skipped_count(), t.rows);
        assert_eq!(t.skipped.get(SKIP_PHANTOM), Some(&199));
        assert_eq!(t.skipped_count(), 199, "{:?}", t.skipped);

        for c in &t.calls {
            assert_eq!(c.call_id.as_str().split('/').count(), 3, "{}", c.call_id);
            for e in &c.events {
                if let EventKind::CallQueued { queue_id, .. } = &e.kind {
                    let queue_id = queue_id.as_str();
                    assert!(ANONYMOUS_BANK_QUEUES.contains(&queue_id), "{queue_id}");
                }
            }
        }

        let out = interleave(&t.calls);
        assert_eq!(out.len(), t.event_count());
        // Per-call order is kept, and every step back in time is a call's own backwards step.
        let mut next_index: std::collections::HashMap<&str, usize> = Default::default();
        let mut prev: Option<&IncomingEvent> = None;
        let mut backwards_calls = HashSet::new();
        for e in &out {
            let n = next_index.entry(e.call_id.as_str()).or_insert(0);
            assert_eq!(e.event_id, Some(format!("{}#{n}", e.call_id)));
            *n += 1;
            if let Some(p) = prev {
                if e.timestamp < p.timestamp {
                    assert_eq!(
                        e.call_id, p.call_id,
                        "{:?} after {:?}",
                        e.event_id, p.event_id
                    );
                    backwards_calls.insert(e.call_id.clone());
                }
            }
            prev = Some(e);
        }
        // 11 non-PHANTOM rows in these 15 days have vru_exit before vru_entry.
        assert_eq!(backwards_calls.len(), 11, "{backwards_calls:?}");
    }

    /// The wire JSON of the whole real file, interleaved, is exactly what the replay sent
    /// before it used `switchboard-core`'s events (its own `ReplayEvent` serializer): the
    /// SHA-256 of one key-sorted JSON object per line was taken from that serializer.
    #[test]
    fn real_file_wire_json_is_unchanged() {
        use sha2::Digest;
        const PATH: &str = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/anonymous-bank/calls-1999-08-01_15.csv"
        );
        let file = std::fs::File::open(PATH).unwrap_or_else(|e| {
            panic!("cannot open {PATH}: {e}; this test reads the Anonymous Bank trace from the repository's sibling shared/data/ (see shared/data/README.md)")
        });
        let t = read_anonymous_bank(std::io::BufReader::new(file)).unwrap();
        let mut h = sha2::Sha256::new();
        let mut n = 0;
        for e in interleave(&t.calls) {
            // Key-sorted, whatever serde_json's `preserve_order` is in this build.
            let sorted: BTreeMap<String, serde_json::Value> =
                serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
            h.update(serde_json::to_string(&sorted).unwrap().as_bytes());
            h.update(b"\n");
            n += 1;
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(n, 96_680);
        assert_eq!(
            hex,
            "2dabff8593e02e8679baa9f0245e90cc4d9a6100a4c412ebce919b7c92bc8d63"
        );
    }
}
