//! Per-queue business-rule settings and the tenant clock.
//!
//! Defaults follow the lifecycle brief summarised in DESIGN.md ("Business rules").

use serde::{Deserialize, Serialize};

/// Which clock a tenant's timers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Timers fire by the wall clock (default).
    #[default]
    Live,
    /// Timers fire when the tenant's watermark (largest event timestamp seen) passes their
    /// deadline, so a recorded trace replayed at any speed raises the alerts of its own time.
    EventTime,
}

impl Clock {
    /// `live` or `event_time`.
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Live => "live",
            Clock::EventTime => "event_time",
        }
    }

    /// Parses `live` or `event_time`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Clock::Live),
            "event_time" => Some(Clock::EventTime),
            _ => None,
        }
    }
}

/// Business-rule settings of one queue. All durations in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    /// Service-level threshold: a call unanswered this long after queue entry raises
    /// `sla_breached`; answered within it counts in `answered_within_sl`. Default 30.
    pub sla_threshold_s: u32,
    /// A routed call not answered within this time is re-queued (`call_retransfer`). Default 15.
    pub ring_timeout_s: u32,
    /// Consecutive unanswered offers after which an agent is put on `break`
    /// (FreeSWITCH mod_callcenter's `max-no-answer`). Default 3; 0 disables.
    pub max_no_answer: u32,
    /// On hold longer than this raises the supervisor alert `long_hold`. Default 60.
    pub hold_max_s: u32,
    /// A call with less talk time than this is flagged `review`. Default 10.
    pub short_call_s: u32,
    /// A completed (answered) call gets `survey_requested`. Default true.
    pub survey_enabled: bool,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            sla_threshold_s: 30,
            ring_timeout_s: 15,
            max_no_answer: 3,
            hold_max_s: 60,
            short_call_s: 10,
            survey_enabled: true,
        }
    }
}

/// A setting outside its allowed range: `(field, message)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    /// The setting's name (`ring_timeout_s`).
    pub field: &'static str,
    /// The allowed range (`must be between 1 and 86400`).
    pub message: String,
}

impl QueueSettings {
    /// Longest accepted duration setting: one day.
    pub const MAX_S: u32 = 86_400;

    /// Checks every setting's range. Durations must be 1..=86400 s (`short_call_s` may be 0,
    /// which disables the review flag); `max_no_answer` 0..=100.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let range = |field: &'static str, v: u32, min: u32, max: u32| {
            if v < min || v > max {
                Err(SettingsError {
                    field,
                    message: format!("must be between {min} and {max}"),
                })
            } else {
                Ok(())
            }
        };
        range("sla_threshold_s", self.sla_threshold_s, 1, Self::MAX_S)?;
        range("ring_timeout_s", self.ring_timeout_s, 1, Self::MAX_S)?;
        range("hold_max_s", self.hold_max_s, 1, Self::MAX_S)?;
        range("short_call_s", self.short_call_s, 0, Self::MAX_S)?;
        range("max_no_answer", self.max_no_answer, 0, 100)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_briefs() {
        let s = QueueSettings::default();
        assert_eq!(
            (
                s.sla_threshold_s,
                s.ring_timeout_s,
                s.hold_max_s,
                s.short_call_s
            ),
            (30, 15, 60, 10)
        );
        assert!(s.survey_enabled);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn out_of_range_names_the_field() {
        let s = QueueSettings {
            ring_timeout_s: 0,
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "ring_timeout_s");
    }

    #[test]
    fn clock_names() {
        assert_eq!(Clock::parse("event_time"), Some(Clock::EventTime));
        assert_eq!(Clock::parse("wall"), None);
        assert_eq!(Clock::Live.as_str(), "live");
    }
}
