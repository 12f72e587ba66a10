//! Delivery of the outbox: Slack (Block Kit with a text fallback), email (lettre; STARTTLS,
//! implicit TLS or plain for local relays; text + HTML), a generic JSON webhook, and
//! Alertmanager's `POST /api/v2/alerts`. Per receiver, oldest first; a failure is retried with
//! exponential backoff and jitter (Slack's 429 `Retry-After` honoured); an entry is marked sent
//! only on a 2xx answer or an accepted SMTP transaction.

use super::store::{AlertStore, OutboxEntry};
use super::{Notification, Status};
use crate::config::{Receiver, SmtpSecurity};
use crate::telemetry::Telemetry;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a delivery attempt failed; `retry_after` when the receiver said when to come back.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl SendError {
    fn new(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retry_after: None,
        }
    }
}

fn env(name: &str) -> Result<String, SendError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| SendError::new(format!("environment variable {name} is not set")))
}

fn headline(n: &Notification) -> String {
    let firing = n.alerts.iter().filter(|a| a.status == Status::Firing).count();
    let resolved = n.alerts.len() - firing;
    let mut parts = Vec::new();
    if firing > 0 {
        parts.push(format!("FIRING: {firing}"));
    }
    if resolved > 0 {
        parts.push(format!("RESOLVED: {resolved}"));
    }
    let rules: Vec<&str> = n.alerts.iter().map(|a| a.rule.as_str()).collect();
    format!("[{}] bankml {} — {}", parts.join(", "), n.job, rules.join(", "))
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    crate::vocab::text::join_labels(labels, ", ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The plain-text form: Slack's fallback and the email's text part.
pub fn text_body(n: &Notification) -> String {
    let mut out = format!("{}\n", headline(n));
    for a in &n.alerts {
        let state = match (a.status, a.reminder) {
            (Status::Resolved, _) => "RESOLVED",
            (Status::Firing, true) => "STILL FIRING",
            (Status::Firing, false) => "FIRING",
        };
        out.push_str(&format!(
            "\n{state} [{}] {}: {}\n  value {} · condition {} · {}\n",
            a.severity,
            a.rule,
            a.summary,
            crate::vocab::text::format_value(a.value),
            a.condition,
            labels_text(&a.labels)
        ));
        if !a.description.is_empty() {
            out.push_str(&format!("  {}\n", a.description));
        }
        if let Some(url) = a.report_url.as_ref().filter(|u| !a.description.contains(u.as_str())) {
            out.push_str(&format!("  report: {url}\n"));
        }
    }
    out
}

/// Slack Block Kit: a header, per alert a section with fields, and a button to the report.
pub fn slack_payload(n: &Notification) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&headline(n), 150), "emoji": true }
    })];
    for a in n.alerts.iter().take(20) {
        let icon = match a.status {
            Status::Firing => ":red_circle:",
            Status::Resolved => ":large_green_circle:",
        };
        let state = match (a.status, a.reminder) {
            (Status::Resolved, _) => "Resolved",
            (Status::Firing, true) => "Still firing",
            (Status::Firing, false) => "Firing",
        };
        let mut text = format!("{icon} *{state}: {}*\n{}", a.rule, a.summary);
        if !a.description.is_empty() {
            text.push('\n');
            text.push_str(&a.description);
        }
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate(&text, 3000) },
            "fields": [
                { "type": "mrkdwn", "text": format!("*Severity*\n{}", a.severity) },
                { "type": "mrkdwn", "text": format!("*Value*\n{}", crate::vocab::text::format_value(a.value)) },
                { "type": "mrkdwn", "text": truncate(&format!("*Condition*\n{}", a.condition), 2000) },
                { "type": "mrkdwn", "text": truncate(&format!("*Labels*\n{}", labels_text(&a.labels)), 2000) },
            ]
        }));
    }
    if let Some(url) = n.alerts.iter().find_map(|a| a.report_url.clone()) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{ "type": "button", "text": { "type": "plain_text", "text": "Open the run's report" }, "url": url }]
        }));
    }
    json!({ "text": truncate(&text_body(n), 3000), "blocks": blocks })
}

/// Alertmanager API v2: one alert per notice. A resolved one ends when it resolved; a firing
/// one at `firing_until`, which the periodic re-send keeps pushing ahead ([`Deliverer::resend_firing`]).
pub fn alertmanager_payload(n: &Notification, firing_until: &str) -> Value {
    Value::Array(
        n.alerts
            .iter()
            .map(|a| {
                let mut labels: BTreeMap<String, String> = a.labels.clone();
                labels.insert("alertname".into(), a.rule.clone());
                labels.insert("severity".into(), a.severity.clone());
                let mut alert = json!({
                    "labels": labels,
                    "annotations": {
                        "summary": a.summary, "description": a.description,
                        "value": crate::vocab::text::format_value(a.value), "condition": a.condition,
                        // An annotation, not a label: the same problem from Prometheus' rules
                        // (config/prometheus/bankml-rules.yaml) carries the same labels, so
                        // Alertmanager keeps one alert for both.
                        "source": "bankml",
                    },
                    "startsAt": a.starts_at,
                });
                if let Some(url) = &a.report_url {
                    alert["generatorURL"] = json!(url);
                }
                alert["endsAt"] = json!(a.ends_at.as_deref().unwrap_or(firing_until));
                alert
            })
            .collect(),
    )
}

pub fn html_body(n: &Notification) -> String {
    let mut rows = String::new();
    for a in &n.alerts {
        let (color, state) = match (a.status, a.reminder) {
            (Status::Resolved, _) => ("#2e7d32", "Resolved"),
            (Status::Firing, true) => ("#c62828", "Still firing"),
            (Status::Firing, false) => ("#c62828", "Firing"),
        };
        let link = a
            .report_url
            .as_ref()
            .map(|u| format!("<a href=\"{}\">report</a>", crate::report::svg::escape(u)))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td style=\"color:{color};font-weight:bold\">{state}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{link}</td></tr>",
            crate::report::svg::escape(&a.severity),
            crate::report::svg::escape(&a.rule),
            crate::report::svg::escape(&a.summary),
            crate::vocab::text::format_value(a.value),
            crate::report::svg::escape(&labels_text(&a.labels)),
        ));
    }
    format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>{}</h2>\
         <table border=\"1\" cellpadding=\"6\" style=\"border-collapse:collapse\">\
         <tr><th>state</th><th>severity</th><th>rule</th><th>summary</th><th>value</th><th>labels</th><th></th></tr>{rows}</table>\
         <p style=\"color:#666\">Sent by bankml.</p></body></html>",
        crate::report::svg::escape(&headline(n))
    )
}

pub struct Deliverer {
    pub store: Arc<AlertStore>,
    pub receivers: BTreeMap<String, Receiver>,
    pub max_backoff: Duration,
    /// Alertmanager's re-send interval (`alerting.alertmanager_resend`).
    pub resend: Duration,
    pub telemetry: Arc<Telemetry>,
    pub wake: Arc<Notify>,
    client: reqwest::Client,
}

impl Deliverer {
    pub fn new(
        store: Arc<AlertStore>,
        receivers: BTreeMap<String, Receiver>,
        max_backoff: Duration,
        resend: Duration,
        telemetry: Arc<Telemetry>,
        wake: Arc<Notify>,
    ) -> Deliverer {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("bankml/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Deliverer {
            store,
            receivers,
            max_backoff,
            resend,
            telemetry,
            wake,
            client,
        }
    }

    /// A deliverer for the receivers and backoff of `config`, on `alerting`'s outbox.
    pub fn for_config(config: &crate::config::EngineConfig, alerting: &super::Alerting) -> Deliverer {
        Deliverer::new(
            alerting.store.clone(),
            config.alerting.receivers.clone(),
            config.alerting.max_backoff,
            config.alerting.alertmanager_resend,
            alerting.telemetry.clone(),
            alerting.wake.clone(),
        )
    }

    /// Delivers until `shutdown`: at once when woken (a new notification), else every second;
    /// every `resend`, the firing alerts to Alertmanager again.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut resent = tokio::time::Instant::now();
        loop {
            self.deliver_due().await;
            if resent.elapsed() >= self.resend {
                resent = tokio::time::Instant::now();
                self.resend_firing().await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One pass: each receiver's oldest pending notification, if due, then the next if that one
    /// went through — so a receiver never gets a later message before an earlier one.
    pub async fn deliver_due(&self) -> usize {
        let now = Utc::now();
        let pending = match self.store.pending(500) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox");
                return 0;
            }
        };
        let mut blocked: HashSet<String> = HashSet::new();
        let mut sent = 0;
        for entry in pending {
            if blocked.contains(&entry.receiver) {
                continue;
            }
            let due = crate::vocab::time::parse_iso(&entry.next_attempt_at).is_none_or(|t| t <= now);
            if !due {
                blocked.insert(entry.receiver.clone());
                continue;
            }
            match self.send(&entry).await {
                Ok(()) => {
                    sent += 1;
                    if let Err(e) = self.store.mark_sent(entry.id, Utc::now()) {
                        tracing::error!(error = %e, "marking a notification sent");
                    }
                    self.telemetry.notification(&entry.receiver, true);
                    tracing::info!(receiver = %entry.receiver, id = entry.id, "notification delivered");
                }
                Err(e) => {
                    blocked.insert(entry.receiver.clone());
                    let wait = e
                        .retry_after
                        .unwrap_or_else(|| backoff(entry.attempts + 1, self.max_backoff, entry.id));
                    let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60));
                    if let Err(err) = self.store.mark_failed(entry.id, &e.message, next) {
                        tracing::error!(error = %err, "recording a failed delivery");
                    }
                    self.telemetry.notification(&entry.receiver, false);
                    tracing::warn!(
                        receiver = %entry.receiver, id = entry.id, attempt = entry.attempts + 1,
                        retry_in = %humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)), error = %e.message, "notification not delivered; will retry"
                    );
                }
            }
        }
        if let Ok(counts) = self.store.pending_counts() {
            self.telemetry
                .pending_notifications(&self.receivers.keys().cloned().collect::<Vec<_>>(), &counts);
        }
        sent
    }

    /// A firing alert's `endsAt` at Alertmanager: four re-send intervals ahead, as Prometheus
    /// does, so one missed re-send does not resolve it and a stopped bankml lets it expire.
    fn firing_until(&self) -> String {
        let ahead = chrono::Duration::from_std(self.resend * 4).unwrap_or(chrono::Duration::minutes(4));
        crate::vocab::time::iso(Utc::now() + ahead)
    }

    /// `notification` to the Alertmanager at `url` (its API v2), firing alerts valid until
    /// [`Self::firing_until`].
    async fn post_to_alertmanager(&self, url: &str, notification: &Notification) -> Result<(), SendError> {
        let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
        self.post(&endpoint, &alertmanager_payload(notification, &self.firing_until()))
            .await
    }

    /// Every alert firing now, to every Alertmanager receiver its rule names, with `endsAt`
    /// pushed ahead. Not queued: a failed re-send is the next one's job.
    pub async fn resend_firing(&self) -> usize {
        let told = match self.store.firing_told() {
            Ok(told) => told,
            Err(e) => {
                tracing::error!(error = %e, "reading the firing alerts to re-send");
                return 0;
            }
        };
        let mut sent = 0;
        for (name, receiver) in &self.receivers {
            let Receiver::Alertmanager { url } = receiver else {
                continue;
            };
            let alerts: Vec<super::Notice> = told
                .iter()
                .filter(|t| t.receivers.contains(name))
                .map(|t| t.notice.clone())
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let count = alerts.len();
            let notification = Notification {
                job: String::new(),
                run_id: None,
                alerts,
            };
            match self.post_to_alertmanager(url, &notification).await {
                Ok(()) => {
                    sent += count;
                    tracing::debug!(receiver = %name, alerts = count, "firing alerts re-sent to Alertmanager");
                }
                Err(e) => {
                    tracing::warn!(receiver = %name, error = %e.message, "re-sending firing alerts to Alertmanager")
                }
            }
        }
        sent
    }

    async fn send(&self, entry: &OutboxEntry) -> Result<(), SendError> {
        let notification: Notification = serde_json::from_str(&entry.payload)
            .map_err(|e| SendError::new(format!("unreadable outbox entry {}: {e}", entry.id)))?;
        let receiver = self
            .receivers
            .get(&entry.receiver)
            .ok_or_else(|| SendError::new(format!("receiver {} is not configured", entry.receiver)))?;
        match receiver {
            Receiver::Slack { webhook_url_env } => {
                self.post(&env(webhook_url_env)?, &slack_payload(&notification)).await
            }
            Receiver::Webhook { url, url_env } => {
                let url = match (url, url_env) {
                    (Some(url), _) => url.clone(),
                    (None, Some(var)) => env(var)?,
                    (None, None) => return Err(SendError::new("webhook without url")),
                };
                let mut body = serde_json::to_value(&notification).unwrap_or_default();
                body["receiver"] = json!(entry.receiver);
                body["version"] = json!(1);
                self.post(&url, &body).await
            }
            Receiver::Alertmanager { url } => self.post_to_alertmanager(url, &notification).await,
            Receiver::Email {
                host,
                port,
                security,
                username_env,
                password_env,
                from,
                to,
            } => {
                let credentials = match (username_env, password_env) {
                    (Some(u), Some(p)) => Some((env(u)?, env(p)?)),
                    _ => None,
                };
                send_email(host, *port, *security, credentials, from, to, &notification).await
            }
        }
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), SendError> {
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            // The URL may hold a secret (Slack webhooks do): never put it in the message.
            .map_err(|e| SendError::new(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        Err(SendError {
            message: format!("HTTP {status}: {}", truncate(text.trim(), 200)),
            retry_after,
        })
    }
}

/// Wait before attempt `attempt + 1`: 2 s doubling, at most `max`, with up to half of it
/// taken off at random (jitter, so many queued messages do not retry in lockstep).
pub fn backoff(attempt: u32, max: Duration, salt: i64) -> Duration {
    let base = Duration::from_secs(2).saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = base.min(max);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 31;
    let fraction = 0.5 + (z % 1000) as f64 / 2000.0;
    capped.mul_f64(fraction)
}

async fn send_email(
    host: &str,
    port: u16,
    security: SmtpSecurity,
    credentials: Option<(String, String)>,
    from: &str,
    to: &[String],
    notification: &Notification,
) -> Result<(), SendError> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let parse = |address: &str| -> Result<Mailbox, SendError> {
        address
            .parse()
            .map_err(|e| SendError::new(format!("address {address}: {e}")))
    };
    let mut builder = Message::builder().from(parse(from)?).subject(headline(notification));
    for address in to {
        builder = builder.to(parse(address)?);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            text_body(notification),
            html_body(notification),
        ))
        .map_err(|e| SendError::new(format!("building the email: {e}")))?;
    let transport = match security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| SendError::new(format!("SMTP {host}: {e}")))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| SendError::new(format!("SMTP {host}: {e}")))?,
    }
    .port(port)
    .timeout(Some(Duration::from_secs(20)));
    let transport = match credentials {
        Some((user, password)) => transport.credentials(Credentials::new(user, password)),
        None => transport,
    }
    .build();
    let response = transport
        .send(message)
        .await
        .map_err(|e| SendError::new(format!("SMTP {host}:{port}: {e}")))?;
    if response.is_positive() {
        Ok(())
    } else {
        Err(SendError::new(format!("SMTP {host}:{port}: {}", response.code())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Notice;

    fn notification() -> Notification {
        Notification {
            job: "daily-benchmark".into(),
            run_id: Some(3),
            alerts: vec![Notice {
                rule: "churn_auc_low".into(),
                status: Status::Firing,
                reminder: false,
                severity: "critical".into(),
                labels: BTreeMap::from([("model".to_string(), "churn".to_string())]),
                value: 0.74,
                threshold: 0.8,
                condition: "churn_auc < 0.8".into(),
                summary: "Churn AUC 0.74 < 0.80".into(),
                description: "v3".into(),
                starts_at: "2026-06-01T00:00:00.000Z".into(),
                ends_at: None,
                report_url: Some("http://127.0.0.1:8001/api/v1/reports/latest?job=daily-benchmark".into()),
            }],
        }
    }

    #[test]
    fn slack_blocks_have_a_header_fields_a_link_and_a_fallback() {
        let payload = slack_payload(&notification());
        assert!(payload["text"].as_str().unwrap().contains("churn_auc_low"));
        let blocks = payload["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 4);
        assert_eq!(
            blocks[2]["elements"][0]["url"],
            notification().alerts[0].report_url.clone().unwrap()
        );
    }

    #[test]
    fn alertmanager_alerts_carry_name_severity_and_end_when_resolved() {
        let mut n = notification();
        n.alerts[0].status = Status::Resolved;
        n.alerts[0].ends_at = Some("2026-06-02T00:00:00.000Z".into());
        let payload = alertmanager_payload(&n, "2026-06-01T00:04:00.000Z");
        assert_eq!(payload[0]["labels"]["alertname"], "churn_auc_low");
        assert_eq!(payload[0]["labels"]["severity"], "critical");
        assert_eq!(payload[0]["endsAt"], "2026-06-02T00:00:00.000Z");
        // A firing one ends where the re-send pushes it, not at Alertmanager's default.
        let firing = alertmanager_payload(&notification(), "2026-06-01T00:04:00.000Z");
        assert_eq!(firing[0]["endsAt"], "2026-06-01T00:04:00.000Z");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let max = Duration::from_secs(600);
        for attempt in 1..12 {
            let wait = backoff(attempt, max, attempt as i64);
            let full = Duration::from_secs(2).saturating_mul(1 << (attempt - 1)).min(max);
            assert!(wait >= full.mul_f64(0.5) && wait <= full, "{attempt}: {wait:?}");
        }
    }
}
