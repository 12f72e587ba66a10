//! Prometheus metrics: job health from the engine, and every observation of every run as a
//! gauge — the same figures the reports hold. Names follow Prometheus conventions: `bankml_`
//! prefix, base units, `_total` counters, `_seconds` durations, no client or manager ids.

use crate::vocab::catalogue::JOB_LABEL;
use crate::vocab::{ModelKind, Observation};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// Job durations run from seconds (scoring a demo bank) to hours (retraining millions).
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

pub struct Telemetry {
    registry: Registry,
    runs: IntCounterVec,
    duration: HistogramVec,
    last_success: GaugeVec,
    running: IntGaugeVec,
    next_run: GaugeVec,
    missed: IntCounterVec,
    reloads: IntCounterVec,
    last_reload: Gauge,
    model_info: GaugeVec,
    notifications: IntCounterVec,
    pending: IntGaugeVec,
    alerts: IntGaugeVec,
    observations: Mutex<Observations>,
}

#[derive(Default)]
struct Observations {
    /// One gauge family per observation name, with its label names.
    families: HashMap<String, (GaugeVec, Vec<String>)>,
    /// What each job published last: removed when its next run no longer reports it.
    published: HashMap<String, Vec<(String, Vec<String>)>>,
}

/// Every registration below uses fixed, valid names: a failure is a programming error caught by
/// the first test that builds a `Telemetry`.
fn must<T>(result: prometheus::Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("metric registration: {e}"),
    }
}

/// `[a-zA-Z0-9_]` only, as Prometheus names and label names require.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let registry = Registry::new();
        fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: T) -> T {
            must(registry.register(Box::new(c.clone())));
            c
        }
        let build = must(GaugeVec::new(
            Opts::new("bankml_build_info", "bankml's version; always 1"),
            &["version"],
        ));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1.0);
        register(&registry, build);
        Telemetry {
            runs: register(
                &registry,
                must(IntCounterVec::new(
                    Opts::new("bankml_job_runs_total", "Job attempts finished, by final status"),
                    &[JOB_LABEL, "status"],
                )),
            ),
            duration: register(
                &registry,
                must(HistogramVec::new(
                    HistogramOpts::new("bankml_job_duration_seconds", "Wall time of job attempts")
                        .buckets(DURATION_BUCKETS.to_vec()),
                    &[JOB_LABEL],
                )),
            ),
            last_success: register(
                &registry,
                must(GaugeVec::new(
                    Opts::new(
                        "bankml_job_last_success_timestamp_seconds",
                        "Unix time the job last succeeded",
                    ),
                    &[JOB_LABEL],
                )),
            ),
            running: register(
                &registry,
                must(IntGaugeVec::new(
                    Opts::new("bankml_job_running", "Attempts of the job running now"),
                    &[JOB_LABEL],
                )),
            ),
            next_run: register(
                &registry,
                must(GaugeVec::new(
                    Opts::new(
                        "bankml_job_next_run_timestamp_seconds",
                        "Unix time of the job's next scheduled firing",
                    ),
                    &[JOB_LABEL],
                )),
            ),
            missed: register(
                &registry,
                must(IntCounterVec::new(
                    Opts::new(
                        "bankml_job_missed_firings_total",
                        "Firings not run because the daemon was down or late (catch_up: none, or older than the latest)",
                    ),
                    &[JOB_LABEL],
                )),
            ),
            reloads: register(
                &registry,
                must(IntCounterVec::new(
                    Opts::new(
                        "bankml_config_reloads_total",
                        "Configuration reloads by result (success, failure: the running configuration stayed)",
                    ),
                    &["result"],
                )),
            ),
            last_reload: register(
                &registry,
                must(Gauge::new(
                    "bankml_config_last_reload_success_timestamp_seconds",
                    "Unix time the configuration was last loaded successfully",
                )),
            ),
            model_info: register(
                &registry,
                must(GaugeVec::new(
                    Opts::new(
                        "bankml_model_info",
                        "The champion of each model: its version and training time; always 1",
                    ),
                    &["model", "version", "trained_at"],
                )),
            ),
            notifications: register(
                &registry,
                must(IntCounterVec::new(
                    Opts::new(
                        "bankml_notifications_total",
                        "Notification delivery attempts by receiver and result (sent, failed: retried later)",
                    ),
                    &["receiver", "result"],
                )),
            ),
            pending: register(
                &registry,
                must(IntGaugeVec::new(
                    Opts::new("bankml_notifications_pending", "Notifications waiting in the outbox"),
                    &["receiver"],
                )),
            ),
            alerts: register(
                &registry,
                must(IntGaugeVec::new(
                    Opts::new(
                        "bankml_alerts",
                        "Alert series by rule, severity and state (pending, firing)",
                    ),
                    &["rule", "severity", "state"],
                )),
            ),
            observations: Mutex::new(Observations::default()),
            registry,
        }
    }

    pub fn job_started(&self, job: &str) {
        self.running.with_label_values(&[job]).inc();
    }

    /// One attempt ended (`status` as the run history names it).
    pub fn job_finished(&self, job: &str, status: &str, seconds: f64, ended_unix: f64) {
        let running = self.running.with_label_values(&[job]);
        running.set((running.get() - 1).max(0));
        self.runs.with_label_values(&[job, status]).inc();
        self.duration.with_label_values(&[job]).observe(seconds);
        if status == "succeeded" {
            self.last_success.with_label_values(&[job]).set(ended_unix);
        }
    }

    /// A firing that did not run because the previous one was still going.
    pub fn job_skipped(&self, job: &str) {
        self.runs.with_label_values(&[job, "skipped"]).inc();
    }

    /// Makes a job's series exist (at zero) before its first run, so dashboards and `rate()`
    /// see it from the start.
    pub fn job_known(&self, job: &str) {
        self.running.with_label_values(&[job]);
        for status in ["succeeded", "failed", "timed_out", "cancelled", "skipped"] {
            self.runs.with_label_values(&[job, status]);
        }
        self.missed.with_label_values(&[job]);
    }

    /// The job's last success as the run history knows it (at start and on reload).
    pub fn job_succeeded_at(&self, job: &str, unix: f64) {
        self.last_success.with_label_values(&[job]).set(unix);
    }

    pub fn job_missed(&self, job: &str, count: u64) {
        self.missed.with_label_values(&[job]).inc_by(count);
    }

    pub fn next_run(&self, job: &str, unix: Option<f64>) {
        match unix {
            Some(t) => self.next_run.with_label_values(&[job]).set(t),
            None => {
                let _ = self.next_run.remove_label_values(&[job]);
            }
        }
    }

    pub fn reload(&self, ok: bool, unix: f64) {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
        if ok {
            self.last_reload.set(unix);
        }
    }

    /// Replaces the champions shown in `bankml_model_info`.
    pub fn models(&self, champions: &[(ModelKind, u32, String)]) {
        self.model_info.reset();
        for (model, version, trained_at) in champions {
            self.model_info
                .with_label_values(&[model.as_str(), version.to_string().as_str(), trained_at.as_str()])
                .set(1.0);
        }
    }

    pub fn notification(&self, receiver: &str, sent: bool) {
        self.notifications
            .with_label_values(&[receiver, if sent { "sent" } else { "failed" }])
            .inc();
    }

    /// Outbox sizes; receivers with nothing waiting show 0.
    pub fn pending_notifications(&self, receivers: &[String], counts: &[(String, i64)]) {
        for receiver in receivers {
            let count = counts.iter().find(|(r, _)| r == receiver).map_or(0, |(_, c)| *c);
            self.pending.with_label_values(&[receiver.as_str()]).set(count);
        }
    }

    /// Replaces the alert counts: (rule, severity, state) → series.
    pub fn alerts(&self, counts: &[(String, String, String, i64)]) {
        self.alerts.reset();
        for (rule, severity, state, count) in counts {
            self.alerts
                .with_label_values(&[rule.as_str(), severity.as_str(), state.as_str()])
                .set(*count);
        }
    }

    /// Publishes a run's observations as `bankml_<name>{bankml_job=…, …}` gauges; what the job's previous
    /// run published but this one did not is removed, so stale figures do not linger.
    pub fn publish(&self, job: &str, observations: &[Observation]) {
        let mut state = self.observations.lock().unwrap_or_else(|p| p.into_inner());
        let mut now: Vec<(String, Vec<String>)> = Vec::new();
        for observation in observations {
            let name = format!("bankml_{}", sanitize(&observation.name));
            let keys: Vec<String> = std::iter::once(JOB_LABEL.to_string())
                .chain(observation.labels.keys().map(|k| sanitize(k)))
                .collect();
            let family = match state.families.get(&name) {
                Some((family, known)) if *known == keys => family.clone(),
                Some(_) => {
                    tracing::warn!(metric = %name, "observation with other labels than before; not published");
                    continue;
                }
                None => {
                    // Only catalogued observations reach here; the fallback guards an old report.
                    let help = crate::vocab::catalogue::find(&observation.name)
                        .map_or("A figure measured by a bankml job", |spec| spec.help);
                    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let Ok(family) = GaugeVec::new(Opts::new(name.clone(), help), &key_refs) else {
                        continue;
                    };
                    if self.registry.register(Box::new(family.clone())).is_err() {
                        tracing::warn!(metric = %name, "observation name clashes with a bankml metric; not published");
                        continue;
                    }
                    state.families.insert(name.clone(), (family.clone(), keys.clone()));
                    family
                }
            };
            let values: Vec<String> = std::iter::once(job.to_string())
                .chain(observation.labels.values().cloned())
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            family.with_label_values(&refs).set(observation.value);
            now.push((name, values));
        }
        let before = state.published.insert(job.to_string(), now.clone()).unwrap_or_default();
        for (name, values) in before {
            if now.iter().any(|(n, v)| *n == name && *v == values) {
                continue;
            }
            if let Some((family, _)) = state.families.get(&name) {
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let _ = family.remove_label_values(&refs);
            }
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into memory fails only on invalid metric data, which the types above exclude.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::catalogue::{CHURN_AUC, FEATURE_PSI, Label};

    const CHURN: (Label, &str) = (Label::Model, "churn");

    #[test]
    fn observations_become_gauges_and_stale_ones_go() {
        let telemetry = Telemetry::new();
        telemetry.publish(
            "daily",
            &[
                Observation::of(&CHURN_AUC, &[CHURN], 0.87),
                Observation::of(&FEATURE_PSI, &[CHURN, (Label::Feature, "age")], 0.04),
                Observation::of(&FEATURE_PSI, &[CHURN, (Label::Feature, "tenure")], 0.31),
            ],
        );
        let text = telemetry.render();
        assert!(
            text.contains("bankml_churn_auc{bankml_job=\"daily\",model=\"churn\"} 0.87"),
            "{text}"
        );
        assert!(text.contains("bankml_feature_psi{bankml_job=\"daily\",feature=\"tenure\",model=\"churn\"} 0.31"));
        assert!(
            text.contains(&format!("# HELP bankml_feature_psi {}\n", FEATURE_PSI.help)),
            "{text}"
        );
        assert!(
            text.contains(&format!("# HELP bankml_churn_auc {}\n", CHURN_AUC.help)),
            "{text}"
        );
        telemetry.publish(
            "daily",
            &[Observation::of(&FEATURE_PSI, &[CHURN, (Label::Feature, "age")], 0.05)],
        );
        let text = telemetry.render();
        assert!(!text.contains("feature=\"tenure\""), "{text}");
        assert!(!text.contains("bankml_churn_auc{"), "{text}");
        assert!(text.contains("bankml_job=\"daily\",feature=\"age\",model=\"churn\"} 0.05"));
    }

    #[test]
    fn job_counters_and_gauges() {
        let telemetry = Telemetry::new();
        telemetry.job_known("daily");
        telemetry.job_started("daily");
        assert!(
            telemetry
                .render()
                .contains("bankml_job_running{bankml_job=\"daily\"} 1")
        );
        telemetry.job_finished("daily", "succeeded", 3.0, 1_700_000_000.0);
        let text = telemetry.render();
        assert!(text.contains("bankml_job_running{bankml_job=\"daily\"} 0"));
        assert!(text.contains("bankml_job_runs_total{bankml_job=\"daily\",status=\"succeeded\"} 1"));
        assert!(text.contains("bankml_job_runs_total{bankml_job=\"daily\",status=\"failed\"} 0"));
        assert!(text.contains("bankml_job_duration_seconds_count{bankml_job=\"daily\"} 1"));
        assert!(text.contains("bankml_job_last_success_timestamp_seconds{bankml_job=\"daily\"} 1700000000"));
        assert!(text.contains("bankml_build_info{version="));
    }
}
