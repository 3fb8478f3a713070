//! Integrations: how one receiver's notifications reach a service. A receiver has one or more
//! (`[[receivers.integrations]]`); each has its own queue, worker, retries and acknowledgements,
//! so a failing one never delays another.
//!
//! An integration kind is one module that turns a group [`Notification`] into a request body
//! (its URL and headers come from the settings) and classifies the answer:
//!
//! * [`webhook`] — the Alertmanager webhook payload (version 4), optionally signed
//!   ([`signing`]).
//! * [`slack`] — a Slack incoming webhook: readable text and one attachment per alert.
//! * [`pagerduty`] — PagerDuty Events API v2: trigger / resolve with a stable `dedup_key`.
//! * [`alertmanager`] — pushes alerts (not grouped payloads) to an Alertmanager's
//!   `POST /api/v2/alerts`, firing ones with their end in the future as Prometheus sends them;
//!   one integration per URL of `urls` (every Alertmanager of a cluster gets every alert).
//!
//! Adding a kind means: a variant of [`IntegrationType`] (its `type` name), of [`Kind`] (its
//! resolved settings, built in [`config`]), a module with its `render` (and `classify` when the
//! service answers differently from the [`default_class`]), and one arm in each `match` here.

pub mod alertmanager;
pub mod config;
pub mod pagerduty;
pub mod signing;
pub mod slack;
pub mod webhook;

pub use config::IntegrationConfig;
pub use signing::Signing;

use crate::config::values::Secret;
use crate::dispatch::Notification;
use reqwest::header::HeaderName;
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;

/// The `type` of an integration, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationType {
    /// `webhook`: Alertmanager's webhook payload.
    Webhook,
    /// `slack`: a Slack incoming webhook.
    Slack,
    /// `pagerduty`: PagerDuty's Events API v2.
    Pagerduty,
    /// `alertmanager`: alerts pushed to Alertmanagers (`POST /api/v2/alerts`).
    Alertmanager,
}

impl IntegrationType {
    /// The `type` value, also the default integration name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Webhook => "webhook",
            IntegrationType::Slack => "slack",
            IntegrationType::Pagerduty => "pagerduty",
            IntegrationType::Alertmanager => "alertmanager",
        }
    }

    /// Whether requests of this type can be signed ([`signing`]): only where the receiving
    /// end is ours to write, not a service with its own authentication.
    pub fn signs(self) -> bool {
        matches!(self, IntegrationType::Webhook)
    }
}

/// An integration kind with its own resolved settings (beyond what every integration has).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Alertmanager's webhook payload.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty's Events API v2.
    PagerDuty {
        /// The integration key of the PagerDuty service (a secret: it lets anyone page).
        routing_key: Secret,
    },
    /// Alerts pushed to one Alertmanager, with when they are re-sent and how far ahead their
    /// end lies.
    Alertmanager(alertmanager::PushPolicy),
}

impl Kind {
    /// What an answer with `status` means for this kind.
    pub(crate) fn classify(&self, status: StatusCode) -> Class {
        match self {
            // PagerDuty: 202 accepted, 429 rate limited, 400 invalid: what the default says.
            Kind::Webhook | Kind::Slack | Kind::PagerDuty { .. } | Kind::Alertmanager(_) => {
                default_class(status)
            }
        }
    }

    /// Its `type`.
    pub fn integration_type(&self) -> IntegrationType {
        match self {
            Kind::Webhook => IntegrationType::Webhook,
            Kind::Slack => IntegrationType::Slack,
            Kind::PagerDuty { .. } => IntegrationType::Pagerduty,
            Kind::Alertmanager(_) => IntegrationType::Alertmanager,
        }
    }

    /// How often a still-firing group must be sent again at the least, whatever its route's
    /// `repeat_interval` and `group_interval` say: an Alertmanager's `resend_interval` (else the
    /// Alertmanager would resolve the alerts itself). `None` for other kinds.
    pub fn resend_interval(&self) -> Option<Duration> {
        match self {
            Kind::Alertmanager(policy) => Some(policy.resend_interval),
            Kind::Webhook | Kind::Slack | Kind::PagerDuty { .. } => None,
        }
    }
}

/// One integration of a receiver, resolved and validated.
///
/// Fields are public so that tests and tools can build one by hand; start from
/// [`IntegrationSettings::webhook`], which has the config file's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationSettings {
    /// Unique within its receiver: the `integration` metric label and log field (the URL is
    /// never logged). Default: the type (`webhook`), `webhook-2` for the second of a type.
    pub name: String,
    /// The kind, with its own settings.
    pub kind: Kind,
    /// Where requests go, an http(s) URL. A secret because it often carries a token.
    pub url: Secret,
    /// Timeout of one delivery attempt, connection included.
    pub timeout: Duration,
    /// Extra request headers; the values are secrets (e.g. `Authorization`) and never logged.
    pub headers: Vec<(HeaderName, Secret)>,
    /// How requests are signed (Standard Webhooks, GitHub-style); not by default.
    pub signing: Signing,
}

impl IntegrationSettings {
    /// A webhook integration named `webhook` posting to `url`, with a 10s timeout and no extra
    /// headers.
    pub fn webhook(url: Secret) -> Self {
        IntegrationSettings {
            name: IntegrationType::Webhook.as_str().to_string(),
            kind: Kind::Webhook,
            url,
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            signing: Signing::default(),
        }
    }

    /// Renders the request body of `n`.
    pub(crate) fn render(&self, n: &Notification, ctx: &Context<'_>) -> Result<Vec<u8>, String> {
        let json = |v: serde_json::Value| {
            serde_json::to_vec(&v).map_err(|e| format!("cannot encode the body: {e}"))
        };
        match &self.kind {
            Kind::Webhook => webhook::render(n, ctx.receiver, ctx.external_url, ctx.max_alerts)
                .map_err(|e| format!("cannot encode the payload: {e}")),
            Kind::Slack => json(slack::render(n, ctx)),
            Kind::PagerDuty { routing_key } => {
                json(pagerduty::render(n, ctx, routing_key.expose()))
            }
            // Every alert (an Alertmanager told of only some would resolve the others), their
            // ends counted from this attempt.
            Kind::Alertmanager(policy) => {
                let now = std::time::SystemTime::now();
                alertmanager::render(&n.alerts, ctx.external_url, policy, now)
                    .map_err(|e| format!("cannot encode the alerts: {e}"))
            }
        }
    }
}

/// What rendering a body needs besides the notification.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The receiver's name.
    pub receiver: &'a str,
    /// This poolwatch's base URL (`externalURL`, links back).
    pub external_url: &'a str,
    /// At most this many alerts per body (0: all).
    pub max_alerts: usize,
}

/// What an HTTP answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Accepted: acknowledged.
    Accepted,
    /// A later attempt may succeed: the service or something in front of it is overloaded or
    /// failing.
    Retryable,
    /// Refused: retrying cannot help.
    Permanent,
    /// 410 Gone: the endpoint no longer exists; the integration is disabled.
    Gone,
}

/// 2xx is accepted; 5xx, 429 (rate limited) and 408 (the service timed out reading us) are
/// retryable; 410 Gone disables the integration; every other status (4xx, and 3xx: redirects
/// are not followed) is permanent.
pub(crate) fn default_class(status: StatusCode) -> Class {
    if status.is_success() {
        Class::Accepted
    } else if status == StatusCode::GONE {
        Class::Gone
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Class::Retryable
    } else {
        Class::Permanent
    }
}
