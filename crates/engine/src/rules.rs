//! The business rules of DESIGN.md ("Business rules", per queue) as pure functions: a call, an
//! event and the queue's settings in, the effects out. No I/O, no clock, no engine state; the
//! tenant state applies the effects (timers, engine-made events, agents' miss counts).
//!
//! - queue entry freezes the call's SLA threshold and arms the SLA timer (`sla_threshold_s`):
//!   `sla_breached` if still unanswered when it fires;
//! - `call_routed` arms the ring timer (`ring_timeout_s`): `call_retransfer` back to the queue
//!   and a miss for the agent; at `max_no_answer` consecutive misses the agent is put on break
//!   (FreeSWITCH mod_callcenter's `max-no-answer`);
//! - answer after waiting more than the frozen threshold: alert `long_wait`;
//! - `call_hold` arms the hold timer (`hold_max_s`): alert `long_hold`;
//! - end of an answered call with talk under `short_call_s`: `call_flagged` `review`;
//! - end of an answered call with reason `completed`: `survey_requested` (when enabled).

use switchboard_core::{
    Call, CallFlag, CallStatus, EndReason, EventKind, QueueSettings, TransferTarget,
};

/// A timer a call can have armed; at most one of each kind per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Unanswered `sla_threshold_s` after queue entry.
    Sla,
    /// Ringing `ring_timeout_s` after `call_routed`.
    Ring,
    /// On hold `hold_max_s`.
    Hold,
    /// An agent's wrap-up ends (keyed by the agent's id, not a call's).
    WrapUp,
}

impl TimerKind {
    /// Every kind a call arms, in the order timers due at the same instant fire.
    pub const ALL: [TimerKind; 3] = [TimerKind::Sla, TimerKind::Ring, TimerKind::Hold];
}

/// What the rules ask for after a client event was applied to a call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Timers to cancel (before arming).
    pub disarm: Vec<TimerKind>,
    /// Timers to arm: kind and deadline (epoch ms).
    pub arm: Vec<(TimerKind, i64)>,
    /// The SLA threshold to freeze on the call (seconds), at its first queue entry.
    pub freeze_sla_threshold_s: Option<u32>,
    /// Engine-made events to record at the event's time, in order.
    pub emit: Vec<EventKind>,
}

/// The rules that follow client event `kind` at `ts` (epoch ms), given the call as it is after
/// the event, the settings of its queue, whether it had been answered before, and whether its
/// SLA timer is armed.
pub fn after_event(
    c: &Call,
    kind: &EventKind,
    ts: i64,
    s: &QueueSettings,
    answered_before: bool,
    sla_armed: bool,
) -> Effects {
    let mut fx = Effects::default();
    match kind {
        EventKind::CallInitiated { .. }
        | EventKind::CallQueued { .. }
        | EventKind::CallTransferred {
            target: TransferTarget::Queue(_),
        } => {
            fx.disarm = vec![TimerKind::Ring, TimerKind::Hold];
            let first_entry = c.queued_at == Some(ts);
            let threshold = match c.sla_threshold_s {
                None if first_entry => {
                    fx.freeze_sla_threshold_s = Some(s.sla_threshold_s);
                    s.sla_threshold_s
                }
                frozen => frozen.unwrap_or(s.sla_threshold_s),
            };
            // Armed once, at the first queue entry, while unanswered.
            if first_entry
                && c.answered_at.is_none()
                && !sla_armed
                && !c.flags.contains(CallFlag::SlaBreached)
                && c.first_queue_id == c.queue_id
            {
                fx.arm.push((TimerKind::Sla, ts + ms(threshold)));
            }
        }
        EventKind::CallRouted { .. }
        | EventKind::CallTransferred {
            target: TransferTarget::Agent(_),
        } => {
            fx.disarm = vec![TimerKind::Hold];
            fx.arm.push((TimerKind::Ring, ts + ms(s.ring_timeout_s)));
        }
        EventKind::CallAnswered { .. } => {
            fx.disarm = vec![TimerKind::Ring, TimerKind::Sla];
            if let (false, Some(wait)) = (answered_before, c.wait_ms) {
                let threshold_s = c.sla_threshold_s.unwrap_or(s.sla_threshold_s);
                if wait > ms(threshold_s) {
                    fx.emit.push(EventKind::LongWait {
                        queue_id: c.queue_id.clone(),
                        wait_s: wait as f64 / 1000.0,
                        threshold_s,
                    });
                }
            }
        }
        // From the hold's start as the call counts it (`state_since`, which a backwards
        // timestamp does not move back), so `hold_s` in `long_hold` is exact.
        EventKind::CallHold { .. } => {
            fx.arm
                .push((TimerKind::Hold, c.state_since + ms(s.hold_max_s)));
        }
        EventKind::CallResumed => fx.disarm = vec![TimerKind::Hold],
        EventKind::CallEnded { end_reason, .. } => {
            fx.disarm = TimerKind::ALL.to_vec();
            if c.was_answered() {
                if s.short_call_s > 0 && c.talk_ms < ms(s.short_call_s) {
                    fx.emit.push(EventKind::CallFlagged {
                        flag: CallFlag::Review,
                        talk_s: c.talk_ms as f64 / 1000.0,
                    });
                }
                if *end_reason == EndReason::Completed && s.survey_enabled {
                    fx.emit.push(EventKind::SurveyRequested {
                        agent_id: c.agent_id.clone(),
                    });
                }
            }
        }
        _ => {}
    }
    fx
}

/// The event a timer of `kind` armed for `deadline` (epoch ms) makes when it fires, if the
/// call is still in the state it was armed for. `missed_before` is the ringing agent's
/// consecutive misses before this one; `max_no_answer` (0 = never) puts it on break.
pub fn on_timer(
    c: &Call,
    kind: TimerKind,
    deadline: i64,
    s: &QueueSettings,
    missed_before: u32,
) -> Option<EventKind> {
    match kind {
        TimerKind::Sla if c.answered_at.is_none() && c.status != CallStatus::Ended => {
            Some(EventKind::SlaBreached {
                queue_id: c.queue_id.clone().or(c.first_queue_id.clone())?,
                // The threshold frozen when the timer was armed at queue entry.
                threshold_s: c
                    .sla_threshold_s
                    .unwrap_or_else(|| secs(deadline - c.queued_at.unwrap_or(deadline))),
            })
        }
        // A ring_all offer that nobody answered counts no miss: no one agent was offered it
        // alone (its group is re-offered by the distributor).
        TimerKind::Ring if c.status == CallStatus::Ringing && !c.ring_group.is_empty() => {
            Some(EventKind::CallRetransfer {
                agent_id: c.agent_id.clone()?,
                missed: missed_before,
                agent_on_break: false,
            })
        }
        TimerKind::Ring if c.status == CallStatus::Ringing => {
            let missed = missed_before + 1;
            Some(EventKind::CallRetransfer {
                agent_id: c.agent_id.clone()?,
                missed,
                agent_on_break: s.max_no_answer > 0 && missed >= s.max_no_answer,
            })
        }
        TimerKind::WrapUp => None,
        TimerKind::Hold if c.status == CallStatus::OnHold => Some(EventKind::LongHold {
            // Armed at the start of the hold for the hold_max_s then in force.
            hold_s: (deadline - c.state_since).max(0) as f64 / 1000.0,
            threshold_s: secs(deadline - c.state_since),
        }),
        _ => None,
    }
}

/// Whole seconds to milliseconds.
pub(crate) fn ms(s: u32) -> i64 {
    i64::from(s) * 1000
}

fn secs(ms: i64) -> u32 {
    u32::try_from(ms.max(0) / 1000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{CallType, ExternalCallId, QueueId};
    use uuid::Uuid;

    fn settings() -> QueueSettings {
        QueueSettings::default()
    }

    fn q(s: &str) -> QueueId {
        QueueId::parse(s).unwrap()
    }

    use switchboard_core::AgentId;

    fn agent(s: &str) -> AgentId {
        AgentId::parse(s).unwrap()
    }

    /// A call driven through `events` (client kinds at their times), as the engine applies them.
    fn call(events: &[(EventKind, i64)]) -> Call {
        let (first, ts) = &events[0];
        let mut c = Call::initiate(
            Uuid::nil(),
            ExternalCallId::parse("c1").unwrap(),
            first,
            *ts,
        )
        .unwrap();
        for (k, ts) in &events[1..] {
            c.apply(k, *ts).unwrap();
        }
        c
    }

    fn initiated(queue: Option<&str>) -> EventKind {
        EventKind::CallInitiated {
            call_type: CallType::Voice,
            queue_id: queue.map(q),
            from: None,
            to: None,
            priority: None,
        }
    }

    fn routed(a: &str) -> EventKind {
        EventKind::CallRouted {
            agent_id: agent(a),
            routing_time: None,
            ring_group: Vec::new(),
            targets: Vec::new(),
        }
    }

    const ANSWERED: EventKind = EventKind::CallAnswered {
        agent_id: None,
        wait_time: None,
    };

    #[test]
    fn queue_entry_freezes_the_threshold_and_arms_the_sla_timer() {
        let k = initiated(Some("q0"));
        let c = call(&[(k.clone(), 1_000)]);
        let mut s = settings();
        s.sla_threshold_s = 20;
        let fx = after_event(&c, &k, 1_000, &s, false, false);
        assert_eq!(fx.freeze_sla_threshold_s, Some(20));
        assert_eq!(fx.arm, vec![(TimerKind::Sla, 21_000)]);
        assert_eq!(fx.disarm, vec![TimerKind::Ring, TimerKind::Hold]);
        // Already armed: not again.
        assert!(after_event(&c, &k, 1_000, &s, false, true).arm.is_empty());
    }

    #[test]
    fn a_frozen_threshold_wins_over_the_queues_current_one() {
        let k = initiated(Some("q0"));
        let mut c = call(&[(k.clone(), 0), (routed("a1"), 1_000), (ANSWERED, 25_000)]);
        c.sla_threshold_s = Some(30);
        let mut s = settings();
        s.sla_threshold_s = 20; // changed after the call entered the queue
        let fx = after_event(&c, &ANSWERED, 25_000, &s, false, false);
        assert!(fx.emit.is_empty(), "25 s is within the frozen 30 s: {fx:?}");
        c.sla_threshold_s = Some(20);
        let fx = after_event(&c, &ANSWERED, 25_000, &s, false, false);
        assert!(matches!(
            fx.emit[..],
            [EventKind::LongWait {
                threshold_s: 20,
                ..
            }]
        ));
    }

    #[test]
    fn answer_cancels_ring_and_sla_and_resets_the_agent() {
        let c = call(&[
            (initiated(Some("q0")), 0),
            (routed("a1"), 1_000),
            (ANSWERED, 2_000),
        ]);
        let fx = after_event(&c, &ANSWERED, 2_000, &settings(), false, true);
        assert_eq!(fx.disarm, vec![TimerKind::Ring, TimerKind::Sla]);
        assert!(fx.emit.is_empty());
        // A second answer (after a transfer) raises no long_wait.
        let late = call(&[
            (initiated(Some("q0")), 0),
            (routed("a1"), 1_000),
            (ANSWERED, 90_000),
        ]);
        assert_eq!(
            after_event(&late, &ANSWERED, 90_000, &settings(), false, false)
                .emit
                .len(),
            1
        );
        assert!(
            after_event(&late, &ANSWERED, 90_000, &settings(), true, false)
                .emit
                .is_empty()
        );
    }

    #[test]
    fn routing_arms_the_ring_timer_and_hold_the_hold_timer() {
        let c = call(&[(initiated(Some("q0")), 0), (routed("a1"), 1_000)]);
        let fx = after_event(&c, &routed("a1"), 1_000, &settings(), false, true);
        assert_eq!(fx.arm, vec![(TimerKind::Ring, 16_000)]);
        let hold = EventKind::CallHold {
            hold_duration: None,
        };
        let c = call(&[
            (initiated(None), 0),
            (routed("a1"), 0),
            (ANSWERED, 0),
            (hold.clone(), 5_000),
        ]);
        let fx = after_event(&c, &hold, 5_000, &settings(), true, false);
        assert_eq!(fx.arm, vec![(TimerKind::Hold, 65_000)]);
    }

    #[test]
    fn end_flags_short_calls_and_requests_surveys() {
        let end = |r| EventKind::CallEnded {
            end_reason: r,
            duration: None,
        };
        let c = call(&[
            (initiated(Some("q0")), 0),
            (routed("a1"), 0),
            (ANSWERED, 0),
            (end(EndReason::Completed), 5_000),
        ]);
        let fx = after_event(
            &c,
            &end(EndReason::Completed),
            5_000,
            &settings(),
            true,
            false,
        );
        assert_eq!(fx.disarm, TimerKind::ALL.to_vec());
        assert!(matches!(
            fx.emit[..],
            [
                EventKind::CallFlagged {
                    flag: CallFlag::Review,
                    ..
                },
                EventKind::SurveyRequested { .. }
            ]
        ));
        let mut s = settings();
        s.survey_enabled = false;
        s.short_call_s = 0;
        assert!(
            after_event(&c, &end(EndReason::Completed), 5_000, &s, true, false)
                .emit
                .is_empty()
        );
        // Never answered: neither.
        let c = call(&[
            (initiated(Some("q0")), 0),
            (end(EndReason::Abandoned), 5_000),
        ]);
        assert!(after_event(
            &c,
            &end(EndReason::Abandoned),
            5_000,
            &settings(),
            false,
            false
        )
        .emit
        .is_empty());
    }

    #[test]
    fn timers_fire_only_in_the_state_they_were_armed_for() {
        let s = settings();
        let waiting = call(&[(initiated(Some("q0")), 0)]);
        assert!(matches!(
            on_timer(&waiting, TimerKind::Sla, 30_000, &s, 0),
            Some(EventKind::SlaBreached {
                threshold_s: 30,
                ..
            })
        ));
        assert_eq!(on_timer(&waiting, TimerKind::Ring, 15_000, &s, 0), None);
        let ringing = call(&[(initiated(Some("q0")), 0), (routed("a1"), 0)]);
        assert_eq!(
            on_timer(&ringing, TimerKind::Ring, 15_000, &s, 2),
            Some(EventKind::CallRetransfer {
                agent_id: agent("a1"),
                missed: 3,
                agent_on_break: true
            })
        );
        assert!(matches!(
            on_timer(&ringing, TimerKind::Ring, 15_000, &s, 0),
            Some(EventKind::CallRetransfer {
                missed: 1,
                agent_on_break: false,
                ..
            })
        ));
        let mut never = s.clone();
        never.max_no_answer = 0;
        assert!(matches!(
            on_timer(&ringing, TimerKind::Ring, 15_000, &never, 99),
            Some(EventKind::CallRetransfer {
                agent_on_break: false,
                ..
            })
        ));
        let answered = call(&[
            (initiated(Some("q0")), 0),
            (routed("a1"), 0),
            (ANSWERED, 1_000),
        ]);
        assert_eq!(on_timer(&answered, TimerKind::Sla, 30_000, &s, 0), None);
        assert_eq!(on_timer(&answered, TimerKind::Hold, 60_000, &s, 0), None);
    }
}
