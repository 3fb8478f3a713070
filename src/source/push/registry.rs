//! The pushes received, shared between the HTTP handler (which stores them) and the push
//! targets' sources (which read them on every tick). Bounded: only configured applications,
//! at most `max_instances` instances and `max_pools` pool names each; instances stale for ten
//! times the ttl are forgotten. Every push is counted and refusals logged from one place
//! ([`Registry::accept`], [`Registry::refused`]).

use super::aggregate::{self, is_fresh, Instance};
use super::body::{validate, Push, PushBody};
use super::config::PushSettings;
use super::counters::{self, Carry};
use crate::config::values::Secret;
use crate::model::{PollData, PollError};
use names::Names;
use prometheus::{IntCounterVec, Opts};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::UnboundedSender;

mod names;

/// An instance stale for this many ttls is forgotten (until then, alerts can name it).
const FORGET_AFTER_TTLS: u32 = 10;

/// Why a push was refused: a bounded label value, an HTTP status and a message that names the
/// field and never quotes a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No push target has the posted `application` name (404).
    UnknownApplication,
    /// The target wants a bearer token and the push has none or another (401).
    Unauthorized,
    /// The body is not a valid push; the message names the field (400).
    Invalid(String),
    /// The body is larger than `http.max_body_bytes` (413).
    TooLarge,
    /// The body is not `application/json` (415).
    NotJson,
    /// The application has `max_instances` fresh instances already (409).
    TooManyInstances(usize),
    /// The push would give the application more than `max_pools` pool names (409).
    TooManyPools(usize),
    /// The instance already pushed stats measured later (409).
    OutOfOrder,
    /// An unknown application would be created beyond `max_applications` (409).
    TooManyApplications(usize),
}

impl Refusal {
    /// Every reason label, for pre-created series.
    pub const REASONS: [&'static str; 9] = [
        "unknown_application",
        "unauthorized",
        "invalid",
        "too_large",
        "not_json",
        "too_many_instances",
        "too_many_pools",
        "out_of_order",
        "too_many_applications",
    ];

    /// The `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownApplication => "unknown_application",
            Refusal::Unauthorized => "unauthorized",
            Refusal::Invalid(_) => "invalid",
            Refusal::TooLarge => "too_large",
            Refusal::NotJson => "not_json",
            Refusal::TooManyInstances(_) => "too_many_instances",
            Refusal::TooManyPools(_) => "too_many_pools",
            Refusal::OutOfOrder => "out_of_order",
            Refusal::TooManyApplications(_) => "too_many_applications",
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::UnknownApplication => 404,
            Refusal::Unauthorized => 401,
            Refusal::Invalid(_) => 400,
            Refusal::TooLarge => 413,
            Refusal::NotJson => 415,
            Refusal::TooManyInstances(_)
            | Refusal::TooManyPools(_)
            | Refusal::OutOfOrder
            | Refusal::TooManyApplications(_) => 409,
        }
    }

    /// What the answer says.
    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownApplication => {
                "application: no push target has this name (configure a \
                [[targets]] entry with type = \"push\" and this name)"
                    .into()
            }
            Refusal::Unauthorized => {
                "this application needs a bearer token (Authorization: Bearer ...) and none or \
                 another was sent"
                    .into()
            }
            Refusal::Invalid(m) => m.clone(),
            Refusal::TooLarge => "the body is larger than http.max_body_bytes".into(),
            Refusal::NotJson => "the body must be JSON (Content-Type: application/json)".into(),
            Refusal::TooManyInstances(n) => {
                format!("instance: the application has {n} fresh instances already (max_instances)")
            }
            Refusal::TooManyPools(n) => {
                format!("pools: the application would have more than {n} pool names (max_pools)")
            }
            Refusal::OutOfOrder => {
                "measured_at: this instance already pushed stats measured later".into()
            }
            Refusal::TooManyApplications(n) => format!(
                "application: no push target has this name, and {n} applications were accepted \
                 as targets already (max_applications)"
            ),
        }
    }
}

/// What an accepted push changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Pools stored for the instance (0 after `"final": true`).
    pub pools: usize,
    /// Fresh instances of the application now, this one included unless it stopped.
    pub instances: usize,
}

/// One push target's pushes.
struct Slot {
    settings: PushSettings,
    /// When poolwatch began watching the target.
    since: SystemTime,
    instances: BTreeMap<String, Instance>,
    /// What each pool's instances have counted, kept cumulative as instances come and go.
    carry: Carry,
    /// Created by a push for an unknown application (`accept_unknown`), not configured.
    adopted: bool,
    /// The pool names its kept instances use (or more).
    names: Names,
}

/// The pushes of every push target. Shared by the HTTP server and the sources; lives as long
/// as the daemon, so a reload keeps what was pushed.
pub struct Registry {
    slots: Mutex<HashMap<String, Slot>>,
    /// `poolwatch_push_accepted_total{target}`.
    accepted: IntCounterVec,
    /// `poolwatch_push_refused_total{reason}`.
    refused: IntCounterVec,
    /// Told the name of every application a push creates, so that it gets a target.
    adopter: Mutex<Option<UnboundedSender<String>>>,
}

impl Registry {
    /// An empty registry whose counters are registered in `prom`.
    pub fn new(prom: &prometheus::Registry) -> prometheus::Result<Registry> {
        let accepted = IntCounterVec::new(
            Opts::new(
                "poolwatch_push_accepted_total",
                "Pushes of pool stats accepted (POST /api/v1/pools), by push target",
            ),
            &["target"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "poolwatch_push_refused_total",
                "Pushes of pool stats refused (POST /api/v1/pools), by reason",
            ),
            &["reason"],
        )?;
        prom.register(Box::new(accepted.clone()))?;
        prom.register(Box::new(refused.clone()))?;
        for r in Refusal::REASONS {
            refused.with_label_values(&[r]);
        }
        Ok(Registry {
            slots: Mutex::new(HashMap::new()),
            accepted,
            refused,
            adopter: Mutex::new(None),
        })
    }

    /// Where the names of applications created by pushes go (the daemon, which starts their
    /// targets).
    pub fn set_adopter(&self, tx: UnboundedSender<String>) {
        *self.adopter.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `targets` the push targets, at `now`: a target that stays keeps its pushes and its
    /// start; a new one starts empty; a removed one is forgotten, with its series. Applications
    /// created by pushes stay while a target still accepts them (up to its `max_applications`,
    /// with its settings) and no other target (`taken`) has their name; returns their names.
    pub fn configure<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a PushSettings>,
        taken: &BTreeSet<String>,
        now: SystemTime,
    ) -> Vec<String> {
        let mut slots = self.lock();
        let before: Vec<String> = slots.keys().cloned().collect();
        let mut kept: HashMap<String, Slot> = HashMap::new();
        for s in targets {
            let slot = match slots.remove(&s.application) {
                Some(mut old) => {
                    (old.settings, old.adopted) = (s.clone(), false);
                    old
                }
                None => Slot {
                    settings: s.clone(),
                    since: now,
                    instances: BTreeMap::new(),
                    carry: Carry::default(),
                    names: Names::default(),
                    adopted: false,
                },
            };
            self.accepted.with_label_values(&[&s.application]);
            kept.insert(s.application.clone(), slot);
        }
        let template = kept
            .values()
            .find(|s| s.settings.max_applications > 0)
            .map(|s| s.settings.clone());
        let mut adopted: Vec<String> = Vec::new();
        if let Some(t) = &template {
            let mut old: Vec<(String, Slot)> = slots
                .drain()
                .filter(|(name, s)| s.adopted && !taken.contains(name))
                .collect();
            old.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, mut slot) in old.into_iter().take(t.max_applications) {
                slot.settings = t.adopted(&name);
                adopted.push(name.clone());
                kept.insert(name, slot);
            }
        }
        for gone in before.iter().filter(|n| !kept.contains_key(*n)) {
            let _ = self.accepted.remove_label_values(&[gone]);
        }
        *slots = kept;
        adopted
    }

    /// Takes a push received at `now` with the `Authorization` header `authorization`.
    pub fn accept(
        &self,
        body: PushBody,
        authorization: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Accepted, Refusal> {
        let application = body.application.clone();
        let outcome = self.store(body, authorization, now);
        match &outcome {
            Ok(_) => self.accepted.with_label_values(&[&application]).inc(),
            Err(r) => self.refused(r),
        }
        outcome
    }

    /// Counts and logs a refusal.
    pub fn refused(&self, r: &Refusal) {
        self.refused.with_label_values(&[r.reason()]).inc();
        tracing::debug!(reason = r.reason(), status = r.status(), message = %r.message(), "push refused");
    }

    fn store(
        &self,
        body: PushBody,
        authorization: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Accepted, Refusal> {
        // The token check and the validation run outside the lock: it is held only to read the
        // settings and to record, so that pushes from many connections do not queue behind
        // each other's parsing (a thread blocked on it blocks its whole runtime worker).
        let (settings, new) = {
            let slots = self.lock();
            match slots.get(&body.application) {
                Some(slot) => (slot.settings.clone(), false),
                None => (template(&slots)?.adopted(&body.application), true),
            }
        };
        if !authorized(settings.token.as_ref(), authorization) {
            return Err(Refusal::Unauthorized);
        }
        let application = body.application.clone();
        let push =
            validate(body, now, settings.ttl, settings.max_pools).map_err(Refusal::Invalid)?;
        let mut slots = self.lock();
        // Adopted by a concurrent push meanwhile: recorded like any push.
        if new && !slots.contains_key(&application) {
            // The last push of an application never seen creates nothing (nor a series).
            if push.final_ {
                return Err(Refusal::UnknownApplication);
            }
            self.adopt(&mut slots, settings, now)?;
        }
        let Some(slot) = slots.get_mut(&application) else {
            return Err(Refusal::UnknownApplication);
        };
        record(slot, push, now)
    }

    /// Creates the target of `settings.application`, unknown until this push, if its name
    /// can be a target's and there is room; tells the adopter.
    fn adopt(
        &self,
        slots: &mut HashMap<String, Slot>,
        settings: PushSettings,
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let max = template(slots)?.max_applications;
        let name = settings.application.clone();
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Refusal::Invalid(
                "application: no push target has this name, and to become one it must use \
                 letters, digits, '-', '_' and '.' only"
                    .into(),
            ));
        }
        if slots.values().filter(|s| s.adopted).count() >= max {
            return Err(Refusal::TooManyApplications(max));
        }
        let adopter = self.adopter.lock().unwrap_or_else(|e| e.into_inner());
        if adopter
            .as_ref()
            .is_some_and(|tx| tx.send(name.clone()).is_err())
        {
            return Err(Refusal::UnknownApplication);
        }
        tracing::info!(target_name = %name, "push from an unknown application: watching it as a target of its own");
        self.accepted.with_label_values(&[&name]);
        let slot = Slot {
            settings,
            since: now,
            instances: BTreeMap::new(),
            carry: Carry::default(),
            adopted: true,
            names: Names::default(),
        };
        slots.insert(name, slot);
        Ok(())
    }

    /// The report of push target `target` at `now` (see [`aggregate::aggregate`]); forgets the
    /// instances stale for long.
    pub fn report(&self, target: &str, now: SystemTime) -> Result<PollData, PollError> {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(target) else {
            return Err(PollError {
                class: crate::model::ErrorClass::Stale,
                message: "not a push target of the running configuration".into(),
            });
        };
        let (ttl, forget) = (slot.settings.ttl, forget_after(slot.settings.ttl));
        let kept = slot.instances.len();
        slot.instances.retain(|_, i| is_fresh(i.at, now, forget));
        if slot.instances.len() < kept {
            slot.names.rebuild(&slot.instances);
        }
        slot.carry
            .forget_except(&slot.instances.keys().map(String::as_str).collect());
        let fresh = slot
            .instances
            .iter()
            .filter(|(_, i)| is_fresh(i.at, now, ttl))
            .flat_map(|(name, i)| i.pools.iter().map(move |p| (name, p)));
        slot.carry
            .observe(fresh.map(|(name, p)| (p.name.as_str(), name.as_str(), counters::three(p))));
        let mut data = aggregate::aggregate(target, &slot.instances, slot.since, ttl, now)?;
        // Summed over the fresh instances, counters would go down as instances leave or
        // restart: each pool's counters are what all its instances have counted.
        for pool in &mut data.pools {
            pool.counters = slot.carry.total(&pool.id.name);
        }
        Ok(data)
    }
}

/// Stores a valid push of an instance of `slot`'s application, within its limits.
fn record(slot: &mut Slot, push: Push, now: SystemTime) -> Result<Accepted, Refusal> {
    let (ttl, max_pools) = (slot.settings.ttl, slot.settings.max_pools);
    if slot
        .instances
        .get(&push.instance)
        .is_some_and(|prev| prev.at > push.at)
    {
        return Err(Refusal::OutOfOrder);
    }
    if push.final_ {
        if slot.instances.remove(&push.instance).is_some() {
            slot.names.rebuild(&slot.instances);
            tracing::info!(target_name = %slot.settings.application, instance = %push.instance, "push instance stopped");
        }
        return Ok(Accepted {
            pools: 0,
            instances: fresh_count(slot, now),
        });
    }
    make_room(slot, &push.instance, now)?;
    let pushed = || push.pools.iter().map(|p| p.name.as_str());
    if !slot.names.admit(pushed(), max_pools) {
        let names = slot
            .instances
            .iter()
            .filter(|(name, i)| **name != push.instance && is_fresh(i.at, now, ttl))
            .flat_map(|(_, i)| i.pools.iter().map(|p| p.name.as_str()))
            .chain(pushed());
        if more_distinct_than(names, max_pools) {
            return Err(Refusal::TooManyPools(max_pools));
        }
    }
    slot.names.add(pushed());
    let pools = push.pools.len();
    let instance = Instance {
        at: push.at,
        pools: push.pools,
    };
    if slot
        .instances
        .insert(push.instance.clone(), instance)
        .is_none()
    {
        tracing::info!(target_name = %slot.settings.application, instance = %push.instance, "push instance joined");
    }
    Ok(Accepted {
        pools,
        instances: fresh_count(slot, now),
    })
}

/// Whether `names` hold more than `max` distinct names. Linear in the names times at most
/// `max + 1` distinct ones, stopping as soon as there are too many: on every push, over every
/// fresh instance's pools, this must stay cheap (collecting them into a set sorted them all, a
/// quarter of a push's CPU with 100 instances).
fn more_distinct_than<'a>(names: impl Iterator<Item = &'a str>, max: usize) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            if seen.len() == max {
                return true;
            }
            seen.push(name);
        }
    }
    false
}

/// The settings of the push target that accepts unknown applications.
fn template(slots: &HashMap<String, Slot>) -> Result<&PushSettings, Refusal> {
    slots
        .values()
        .map(|s| &s.settings)
        .find(|s| s.max_applications > 0)
        .ok_or(Refusal::UnknownApplication)
}

/// Makes room for `instance` when the slot is full: the stalest stale instance goes, or the
/// push is refused.
fn make_room(slot: &mut Slot, instance: &str, now: SystemTime) -> Result<(), Refusal> {
    let max = slot.settings.max_instances;
    if slot.instances.contains_key(instance) || slot.instances.len() < max {
        return Ok(());
    }
    let ttl = slot.settings.ttl;
    let stalest = slot
        .instances
        .iter()
        .filter(|(_, i)| !is_fresh(i.at, now, ttl))
        .min_by_key(|(_, i)| i.at)
        .map(|(name, _)| name.clone());
    match stalest {
        Some(name) => {
            slot.instances.remove(&name);
            slot.names.rebuild(&slot.instances);
            Ok(())
        }
        None => Err(Refusal::TooManyInstances(max)),
    }
}

fn fresh_count(slot: &Slot, now: SystemTime) -> usize {
    slot.instances
        .values()
        .filter(|i| is_fresh(i.at, now, slot.settings.ttl))
        .count()
}

/// Whether `authorization` (the header's bytes) carries the token `expected` wants; any push is
/// when none is wanted. The token is compared in constant time.
pub fn authorized(expected: Option<&Secret>, authorization: Option<&[u8]>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(sent) = authorization.and_then(bearer) else {
        return false;
    };
    bool::from(sent.ct_eq(expected.expose().as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// How long an instance is remembered after its last push.
pub fn forget_after(ttl: Duration) -> Duration {
    ttl.saturating_mul(FORGET_AFTER_TTLS)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mutation_tests;
