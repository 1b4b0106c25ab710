//! Counters in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use plugin::processor::{MASK_BUCKETS_US, Metrics as MaskMetrics};

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (endpoint, status code).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub records: AtomicU64,
    pub truncated_records: AtomicU64,
    pub in_flight: AtomicU64,
    pub pack_reloads: AtomicU64,
    pub mask: std::sync::Arc<MaskMetrics>,
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, status: u16) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry((endpoint, status)).or_default() += 1;
    }

    /// The text exposition; `packs` is the number of loaded packs.
    pub fn render(&self, packs: usize) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP netnomos_requests_total Requests answered, by endpoint and status."
        );
        let _ = writeln!(out, "# TYPE netnomos_requests_total counter");
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "netnomos_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            (
                "netnomos_prompt_tokens_total",
                "Prompt tokens of generation requests.",
                load(&self.prompt_tokens),
            ),
            (
                "netnomos_completion_tokens_total",
                "Tokens generated.",
                load(&self.completion_tokens),
            ),
            (
                "netnomos_records_total",
                "Records generated whole.",
                load(&self.records),
            ),
            (
                "netnomos_truncated_records_total",
                "Records cut off by max_tokens.",
                load(&self.truncated_records),
            ),
            (
                "netnomos_masked_steps_total",
                "Decoding steps that computed a rule-pack mask.",
                load(&self.mask.masked_steps),
            ),
            (
                "netnomos_masked_tokens_total",
                "Tokens masked out, summed over steps.",
                load(&self.mask.masked_tokens),
            ),
            (
                "netnomos_forced_stops_total",
                "Generations stopped by a failure inside enforcement.",
                load(&self.mask.forced_stops),
            ),
            (
                "netnomos_rulepack_scans_total",
                "Scans of the rule-pack directory.",
                load(&self.pack_reloads),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let gauges = [
            (
                "netnomos_requests_in_flight",
                "Generation requests running now.",
                load(&self.in_flight),
            ),
            (
                "netnomos_rulepacks_loaded",
                "Rule packs loaded (all versions).",
                packs as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let name = "netnomos_mask_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to compute one decoding step's mask."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in MASK_BUCKETS_US.iter().enumerate() {
            cumulative += load(&self.mask.mask_time[i]);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", bound / 1e6);
        }
        cumulative += load(&self.mask.mask_time[MASK_BUCKETS_US.len()]);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            load(&self.mask.mask_time_ns) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
        out
    }
}
