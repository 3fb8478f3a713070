//! `[[receivers.integrations]]`: what every integration has (`type`, `name`, `url` or
//! `url_file`, `timeout`, `headers`), resolved (secrets read) and validated, so that a worker
//! never meets a bad URL or header at delivery time. Messages never contain a secret.
//!
//! An `alertmanager` integration takes `urls` (every Alertmanager of a cluster) instead of
//! `url`, plus `resend_interval` and `basic_auth`; it becomes one integration per URL, each with
//! its own queue, retries and acknowledgements (see [`super::alertmanager`]).

use super::alertmanager::{PushPolicy, DEFAULT_RESEND_INTERVAL};
use super::signing::{self, Signing};
use super::{IntegrationSettings, IntegrationType, Kind};
use crate::config::values::{resolve_secret, HumanDuration, Problems, Secret, SecretRef};
use base64::Engine as _;
use reqwest::header::AUTHORIZATION;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// `[[receivers.integrations]]`: one way the receiver's notifications go out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// `"webhook"` (Alertmanager's webhook payload), `"slack"` (an incoming webhook),
    /// `"pagerduty"` (Events API v2) or `"alertmanager"` (alerts pushed to Alertmanagers).
    /// Required.
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    /// Name within the receiver: the `integration` metric label and log field. Default: the
    /// type, then `<type>-2`, `<type>-3` for further integrations of the same type.
    #[serde(default)]
    pub name: Option<String>,
    /// URL, literal or `${ENV_VAR}`. A secret: it often carries a token. Required, except for
    /// `pagerduty` (default `https://events.pagerduty.com/v2/enqueue`); not for `alertmanager`,
    /// which takes `urls`.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// `alertmanager` only: the base URL of every Alertmanager of the cluster (each gets every
    /// alert at `<url>/api/v2/alerts`), literal or `${ENV_VAR}`. Required there.
    #[serde(default)]
    pub urls: Vec<SecretRef>,
    /// `alertmanager` only: how often firing alerts are pushed again. Default `"1m"`.
    #[serde(default)]
    pub resend_interval: Option<HumanDuration>,
    /// `alertmanager` only: HTTP basic authentication (`username`, and `password` or
    /// `password_file`, a secret).
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// File holding the URL. Exclusive with `url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Timeout of one delivery attempt. Default `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Extra HTTP headers (values may be `${ENV_VAR}`, e.g. `Authorization`). Never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    /// Standard Webhooks signing secret, `whsec_<base64>` (literal or `${ENV_VAR}`): requests
    /// get `webhook-id`, `webhook-timestamp` and `webhook-signature`. `webhook` only. Default:
    /// not signed.
    #[serde(default)]
    pub signing_secret: Option<SecretRef>,
    /// File holding the Standard Webhooks secret. Exclusive with `signing_secret`.
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// GitHub-style secret: requests get `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
    /// body>`. `webhook` only. Default: none.
    #[serde(default)]
    pub github_secret: Option<SecretRef>,
    /// File holding the GitHub-style secret. Exclusive with `github_secret`.
    #[serde(default)]
    pub github_secret_file: Option<PathBuf>,
    /// PagerDuty's integration key of the service (literal or `${ENV_VAR}`); `pagerduty` only,
    /// where it is required. A secret.
    #[serde(default)]
    pub routing_key: Option<SecretRef>,
    /// File holding the routing key. Exclusive with `routing_key`.
    #[serde(default)]
    pub routing_key_file: Option<PathBuf>,
}

/// `basic_auth` of an `alertmanager` integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// The password, literal or `${ENV_VAR}`. A secret.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// File holding the password. Exclusive with `password`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// The longest `resend_interval`: the Alertmanager keeps a firing alert 4 times that long.
const MAX_RESEND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

fn default_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}

/// Headers poolwatch sets itself; a configured value would break the request or lie about it.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    super::super::IDEMPOTENCY_KEY,
];

/// Resolves and validates the integrations of the receiver at key path `receiver`
/// (`receivers[2]`). Problems are recorded at their key paths
/// (`receivers[2].integrations[0].url`); `None` when there was any.
pub(crate) fn resolve(
    cfgs: &[IntegrationConfig],
    receiver: &str,
    problems: &mut Problems,
) -> Option<Vec<IntegrationSettings>> {
    if cfgs.is_empty() {
        problems.at(
            format!("{receiver}.integrations"),
            "required: add at least one [[receivers.integrations]] with a `type` \
             (\"webhook\", \"slack\", \"pagerduty\" or \"alertmanager\") and its keys",
        );
        return None;
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(cfgs.len());
    let mut ok = true;
    for (i, cfg) in cfgs.iter().enumerate() {
        let mut check = Check {
            prefix: format!("{receiver}.integrations[{i}]"),
            problems,
            ok: true,
        };
        let name = cfg
            .name
            .clone()
            .unwrap_or_else(|| default_name(cfgs, i, cfg.kind));
        if name.trim().is_empty() {
            check.fail("name", "must not be empty");
        }
        let headers = check.headers(cfg);
        let signing = check.signing(cfg);
        if cfg.timeout.0.is_zero() {
            check.fail("timeout", "must be greater than 0");
        }
        let kind = check.kind(cfg);
        let built = if cfg.kind == IntegrationType::Alertmanager {
            check.alertmanager(cfg, &name, headers)
        } else {
            check.only_alertmanager(cfg);
            match (check.url(cfg), kind) {
                (Some(url), Some(kind)) => vec![IntegrationSettings {
                    name,
                    kind,
                    url,
                    timeout: cfg.timeout.0,
                    headers,
                    signing,
                }],
                _ => Vec::new(),
            }
        };
        for settings in &built {
            if !names.insert(settings.name.clone()) {
                check.fail(
                    "name",
                    format!(
                        "duplicate integration name \"{}\" in this receiver: \
                         give each a unique `name`",
                        settings.name
                    ),
                );
            }
        }
        ok &= check.ok;
        if check.ok {
            out.extend(built);
        }
    }
    ok.then_some(out)
}

/// `webhook` for the first webhook of the receiver, `webhook-2` for the second, and so on.
fn default_name(cfgs: &[IntegrationConfig], index: usize, kind: IntegrationType) -> String {
    let nth = cfgs[..index].iter().filter(|c| c.kind == kind).count();
    match nth {
        0 => kind.as_str().to_string(),
        n => format!("{}-{}", kind.as_str(), n + 1),
    }
}

/// Records problems of one integration and remembers whether there were any.
struct Check<'a> {
    /// Key path of the integration, e.g. `receivers[0].integrations[1]`.
    prefix: String,
    /// Where every problem goes.
    problems: &'a mut Problems,
    /// No problem recorded yet.
    ok: bool,
}

impl Check<'_> {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.ok = false;
        self.problems.at(format!("{}.{key}", self.prefix), message);
    }

    /// Resolves the secret `name`, written inline or as `{name}_file`: `Err(())` when a
    /// problem was recorded (at the key that was written), else the value, if given, with
    /// that key.
    fn secret(
        &mut self,
        name: &str,
        inline: Option<&SecretRef>,
        file: Option<&Path>,
    ) -> Result<Option<(String, Secret)>, ()> {
        let at = match (inline, file) {
            (None, Some(_)) => format!("{name}_file"),
            _ => name.to_string(),
        };
        match resolve_secret(inline, file, name) {
            Ok(value) => Ok(value.map(|v| (at, v))),
            Err(e) => {
                self.fail(&at, e);
                Err(())
            }
        }
    }

    fn url(&mut self, cfg: &IntegrationConfig) -> Option<Secret> {
        match self.secret("url", cfg.url.as_ref(), cfg.url_file.as_deref()) {
            Err(()) => None,
            Ok(None) if cfg.kind == IntegrationType::Pagerduty => {
                Some(Secret::new(super::pagerduty::DEFAULT_URL))
            }
            Ok(None) => {
                self.fail("url", "required: set `url` or `url_file`");
                None
            }
            Ok(Some((at, url))) => match check_url(url.expose()) {
                Ok(()) => Some(url),
                Err(e) => {
                    self.fail(&at, e);
                    None
                }
            },
        }
    }

    fn headers(&mut self, cfg: &IntegrationConfig) -> Vec<(HeaderName, Secret)> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(cfg.headers.len());
        for (name, value) in &cfg.headers {
            let key = format!("headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.fail(&key, format!("\"{name}\" is not a valid HTTP header name"));
                continue;
            };
            if RESERVED_HEADERS.contains(&header.as_str())
                || signing::HEADERS.contains(&header.as_str())
            {
                self.fail(
                    &key,
                    format!("\"{name}\" is set by poolwatch and cannot be configured"),
                );
                continue;
            }
            if !seen.insert(header.clone()) {
                self.fail(
                    &key,
                    format!("header \"{name}\" is set twice (names are case-insensitive)"),
                );
                continue;
            }
            match value.resolve() {
                Err(e) => self.fail(&key, e),
                Ok(secret) if HeaderValue::from_str(secret.expose()).is_err() => self.fail(
                    &key,
                    "value is not a valid HTTP header value (control characters or non-ASCII)",
                ),
                Ok(secret) => out.push((header, secret)),
            }
        }
        out
    }
}

impl Check<'_> {
    /// The kind with its own settings: `routing_key` for `pagerduty` (and only there).
    fn kind(&mut self, cfg: &IntegrationConfig) -> Option<Kind> {
        let key = self
            .secret(
                "routing_key",
                cfg.routing_key.as_ref(),
                cfg.routing_key_file.as_deref(),
            )
            .ok()?;
        match (cfg.kind, key) {
            (IntegrationType::Pagerduty, Some((_, routing_key))) => {
                Some(Kind::PagerDuty { routing_key })
            }
            (IntegrationType::Pagerduty, None) => {
                self.fail(
                    "routing_key",
                    "required for type = \"pagerduty\": the integration key of the PagerDuty \
                     service (set `routing_key` or `routing_key_file`)",
                );
                None
            }
            (other, Some((at, _))) => {
                self.fail(&at, only_for("pagerduty", other));
                None
            }
            (IntegrationType::Webhook, None) => Some(Kind::Webhook),
            (IntegrationType::Slack, None) => Some(Kind::Slack),
            // One per URL, built by `alertmanager`.
            (IntegrationType::Alertmanager, None) => None,
        }
    }

    /// The signing keys: each a secret (or a file), only where the type signs.
    fn signing(&mut self, cfg: &IntegrationConfig) -> Signing {
        let mut key = |name: &str, inline: Option<&SecretRef>, file: Option<&Path>| {
            let (at, secret) = self.secret(name, inline, file).ok()??;
            if !cfg.kind.signs() {
                self.fail(&at, only_for("webhook", cfg.kind));
                return None;
            }
            Some((at, secret))
        };
        let standard = key(
            "signing_secret",
            cfg.signing_secret.as_ref(),
            cfg.signing_secret_file.as_deref(),
        );
        let github = key(
            "github_secret",
            cfg.github_secret.as_ref(),
            cfg.github_secret_file.as_deref(),
        );
        let standard_webhooks =
            standard.and_then(|(at, s)| match signing::decode_whsec(s.expose()) {
                Ok(key) => Some(key),
                Err(e) => {
                    self.fail(&at, e);
                    None
                }
            });
        Signing {
            standard_webhooks,
            github: github.map(|(_, s)| signing::Key::new(s.expose().as_bytes())),
        }
    }
}

impl Check<'_> {
    /// An `alertmanager` integration: one per URL of `urls`, named after the integration (with
    /// `/1`, `/2`... when there are several), each posting to `<url>/api/v2/alerts`.
    fn alertmanager(
        &mut self,
        cfg: &IntegrationConfig,
        name: &str,
        mut headers: Vec<(HeaderName, Secret)>,
    ) -> Vec<IntegrationSettings> {
        if cfg.url.is_some() || cfg.url_file.is_some() {
            let key = if cfg.url.is_some() { "url" } else { "url_file" };
            self.fail(
                key,
                "an alertmanager integration takes `urls = [...]`: every Alertmanager of the \
                 cluster, each of which gets every alert",
            );
        }
        if cfg.urls.is_empty() {
            self.fail(
                "urls",
                "required: the base URL of every Alertmanager of the cluster",
            );
        }
        let resend = cfg.resend_interval.map_or(DEFAULT_RESEND_INTERVAL, |d| d.0);
        if resend.is_zero() || resend > MAX_RESEND_INTERVAL {
            self.fail("resend_interval", "must be greater than 0 and at most 1h");
        }
        if let Some(auth) = &cfg.basic_auth {
            if let Some(header) = self.basic_auth(auth, &headers) {
                headers.push(header);
            }
        }
        let policy = PushPolicy {
            resend_interval: resend,
            evaluation_interval: std::time::Duration::ZERO,
        };
        let several = cfg.urls.len() > 1;
        let mut out = Vec::with_capacity(cfg.urls.len());
        for (i, url) in cfg.urls.iter().enumerate() {
            let url = match url
                .resolve()
                .and_then(|u| check_url(u.expose()).map(|()| u))
            {
                Ok(u) => u,
                Err(e) => {
                    self.fail(&format!("urls[{i}]"), e);
                    continue;
                }
            };
            out.push(IntegrationSettings {
                name: if several {
                    format!("{name}/{}", i + 1)
                } else {
                    name.to_string()
                },
                kind: Kind::Alertmanager(policy),
                url: Secret::new(format!(
                    "{}/api/v2/alerts",
                    url.expose().trim_end_matches('/')
                )),
                timeout: cfg.timeout.0,
                headers: headers.clone(),
                signing: Signing::default(),
            });
        }
        out
    }

    /// The `Authorization` header of `basic_auth`; `None` (with a problem) when it is incomplete
    /// or an `Authorization` header is configured too.
    fn basic_auth(
        &mut self,
        auth: &BasicAuthConfig,
        headers: &[(HeaderName, Secret)],
    ) -> Option<(HeaderName, Secret)> {
        if headers.iter().any(|(h, _)| *h == AUTHORIZATION) {
            self.fail(
                "basic_auth",
                "set either `basic_auth` or an Authorization header",
            );
            return None;
        }
        if auth.username.is_empty() || auth.username.contains(':') {
            self.fail("basic_auth.username", "must not be empty nor contain ':'");
            return None;
        }
        let password = match self.secret(
            "basic_auth.password",
            auth.password.as_ref(),
            auth.password_file.as_deref(),
        ) {
            Err(()) => return None,
            Ok(Some((_, p))) => p,
            Ok(None) => {
                self.fail(
                    "basic_auth.password",
                    "required: set `password` or `password_file`",
                );
                return None;
            }
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            auth.username,
            password.expose()
        ));
        Some((AUTHORIZATION, Secret::new(format!("Basic {token}"))))
    }

    /// The `alertmanager` keys, refused on any other type.
    fn only_alertmanager(&mut self, cfg: &IntegrationConfig) {
        let only = only_for("alertmanager", cfg.kind);
        if !cfg.urls.is_empty() {
            self.fail("urls", only.clone());
        }
        if cfg.resend_interval.is_some() {
            self.fail("resend_interval", only.clone());
        }
        if cfg.basic_auth.is_some() {
            self.fail("basic_auth", only);
        }
    }
}

/// `only for type = "TYPE" (this one is "...")`.
fn only_for(allowed: &str, this: IntegrationType) -> String {
    format!(
        "only for type = \"{allowed}\" (this one is \"{}\")",
        this.as_str()
    )
}

/// Checks that `s` is an absolute http(s) URL with a host. The error never quotes the URL.
pub(crate) fn check_url(s: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a valid http(s) URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // The scheme is not quoted: a token pasted without a URL parses as a scheme.
        return Err("not a valid http(s) URL: the scheme is not http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("not a valid http(s) URL: no host".into());
    }
    Ok(())
}
