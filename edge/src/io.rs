//! How the machine asks for I/O without doing any: every operation the edge needs (load the
//! settings, read KV, call the origin, forward to the app…) is an `await` on an [`Io`] method,
//! which parks its [`Step`] for the entry and resumes with the entry's [`Outcome`]. The request
//! flows (`crate::flow`, `crate::endpoints`, `crate::instructions`) therefore read as ordinary
//! async code, while [`Machine`] drives them one step at a time from plain data: the same code
//! runs on workerd and in native tests, where the test plays the entry.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use latch_shared::api::DeviceReport;

use crate::respond::internal_error;
use crate::step::{BlacklistWrite, Forward, OriginCall, Outcome, Step};

/// The most steps one request may take: far more than any flow needs (a settings load, a fresh
/// key fetch, a KV read, a forward, two origin calls and a KV write), so reaching it is a bug,
/// answered with a 500 rather than a loop.
const MAX_STEPS: u32 = 32;

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    /// A step the flow waits on.
    Asked(Step),
    /// The entry's report of it.
    Answered(Outcome),
}

/// The flow's handle on the entry: a slot that holds one step or one outcome at a time.
#[derive(Debug, Clone, Default)]
pub struct Io {
    slot: Rc<RefCell<Slot>>,
}

/// A step in flight: parks the step on first poll, completes with the outcome.
struct Perform {
    io: Io,
    step: Option<Step>,
}

impl Future for Perform {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(step) = self.step.take() {
            *self.io.slot.borrow_mut() = Slot::Asked(step);
            return Poll::Pending;
        }
        let mut slot = self.io.slot.borrow_mut();
        match std::mem::take(&mut *slot) {
            Slot::Answered(outcome) => Poll::Ready(outcome),
            other => {
                *slot = other;
                Poll::Pending
            }
        }
    }
}

/// The app's answer to a forwarded request, when it carries an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInstruction {
    pub login: Option<String>,
    pub logout: bool,
    /// A new JWT payload for the request's session (`x-latch-jwt-payload`'s value).
    pub jwt_payload: Option<String>,
    /// With a login instruction: the request's device, for "your devices".
    pub device: DeviceReport,
}

/// The origin's answer, before it is read (`crate::origin::read_answer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginAnswer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

/// Why a body could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefused {
    TooLarge,
    NotUtf8,
}

impl Io {
    async fn perform(&self, step: Step) -> Outcome {
        Perform { io: self.clone(), step: Some(step) }.await
    }

    /// The settings document's text.
    pub async fn load_settings(&self, url: String, fresh: bool) -> Result<String, String> {
        match self.perform(Step::LoadSettings { url, fresh }).await {
            Outcome::Settings { text: Some(text), .. } => Ok(text),
            Outcome::Settings { error, .. } => Err(error.unwrap_or_else(|| "no document".into())),
            other => Err(unexpected("load_settings", &other)),
        }
    }

    pub async fn await_settings(&self) {
        self.perform(Step::AwaitSettings).await;
    }

    /// Whether KV holds `key`; `None` when KV could not be read.
    pub async fn read_blacklist(&self, key: String) -> Option<bool> {
        match self.perform(Step::ReadBlacklist { key }).await {
            Outcome::Blacklist { revoked } => revoked,
            _ => None,
        }
    }

    pub async fn write_blacklist(&self, entries: Vec<BlacklistWrite>) -> Result<(), String> {
        match self.perform(Step::WriteBlacklist { entries }).await {
            Outcome::Written { error: None } => Ok(()),
            Outcome::Written { error: Some(error) } => Err(error),
            other => Err(unexpected("write_blacklist", &other)),
        }
    }

    /// The request's body, at most `limit` bytes of UTF-8.
    pub async fn read_body(&self, limit: usize) -> Result<String, BodyRefused> {
        match self.perform(Step::ReadBody { limit }).await {
            Outcome::Body { text: Some(text), .. } if text.len() <= limit => Ok(text),
            Outcome::Body { text: Some(_), .. } | Outcome::Body { too_large: true, .. } => {
                Err(BodyRefused::TooLarge)
            }
            _ => Err(BodyRefused::NotUtf8),
        }
    }

    /// The 64-byte Ed25519 signature of `input` by the assertion key.
    pub async fn sign(&self, input: String) -> Result<[u8; 64], String> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        match self.perform(Step::Sign { input }).await {
            Outcome::Signed { signature: Some(signature), .. } => URL_SAFE_NO_PAD
                .decode(signature)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| "the runtime's signature is not 64 bytes of base64url".into()),
            Outcome::Signed { error, .. } => Err(error.unwrap_or_else(|| "no signature".into())),
            other => Err(unexpected("sign", &other)),
        }
    }

    /// The origin's answer, or why it could not be reached.
    pub async fn call_origin(&self, call: OriginCall) -> Result<OriginAnswer, String> {
        match self.perform(Step::CallOrigin(call)).await {
            Outcome::Origin { error: Some(error), .. } => Err(error),
            Outcome::Origin { status, body, retry_after, error: None } => {
                Ok(OriginAnswer { status, body, retry_after })
            }
            other => Err(unexpected("call_origin", &other)),
        }
    }

    /// Forwards to the app. Completes only when the app's answer carries an instruction (the
    /// entry ends the request itself otherwise); `Err` when the app could not be reached.
    pub async fn forward(&self, forward: Forward) -> Result<AppInstruction, ()> {
        match self.perform(Step::Forward(forward)).await {
            Outcome::App { login, logout, jwt_payload, device } => {
                Ok(AppInstruction { login, logout, jwt_payload, device })
            }
            _ => Err(()),
        }
    }
}

/// Names the outcome's kind only: its contents may be a client's body or a login instruction.
fn unexpected(step: &str, outcome: &Outcome) -> String {
    format!("the entry answered {} to {step}", outcome.kind())
}

/// One request's flow, driven step by step.
pub struct Machine {
    io: Io,
    flow: Option<Pin<Box<dyn Future<Output = Step>>>>,
    steps: u32,
}

impl Machine {
    /// A machine for `flow`, which must perform its I/O through `io`.
    pub fn new(io: Io, flow: impl Future<Output = Step> + 'static) -> Machine {
        Machine { io, flow: Some(Box::pin(flow)), steps: 0 }
    }

    /// Hands the outcome of the last step to the flow (nothing for [`Outcome::Start`]) and runs
    /// it to its next step. After a final step the request is over: resuming again is a bug.
    pub fn resume(&mut self, outcome: Outcome) -> Step {
        self.steps += 1;
        let Some(flow) = self.flow.as_mut() else {
            crate::log::error("a request was resumed after it ended");
            return Step::Respond(internal_error());
        };
        if self.steps > MAX_STEPS {
            self.flow = None;
            crate::log::error("a request took more steps than any flow has");
            return Step::Respond(internal_error());
        }
        if outcome != Outcome::Start {
            *self.io.slot.borrow_mut() = Slot::Answered(outcome);
        }
        match flow.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(step) => {
                self.flow = None;
                step
            }
            Poll::Pending => match std::mem::take(&mut *self.io.slot.borrow_mut()) {
                Slot::Asked(step) => step,
                _ => {
                    self.flow = None;
                    crate::log::error("a request's flow waits on nothing");
                    Step::Respond(internal_error())
                }
            },
        }
    }

    /// Whether the request is over.
    pub fn is_done(&self) -> bool {
        self.flow.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::Reply;

    #[test]
    fn a_flow_runs_one_step_per_resume_and_ends_with_its_answer() {
        let io = Io::default();
        let flow_io = io.clone();
        let mut machine = Machine::new(io, async move {
            let revoked = flow_io.read_blacklist("k".into()).await;
            Step::Respond(Reply::empty(if revoked == Some(true) { 401 } else { 200 }))
        });
        assert_eq!(machine.resume(Outcome::Start), Step::ReadBlacklist { key: "k".into() });
        assert_eq!(
            machine.resume(Outcome::Blacklist { revoked: Some(true) }),
            Step::Respond(Reply::empty(401))
        );
        assert!(machine.is_done());
        assert_eq!(machine.resume(Outcome::Waited), Step::Respond(internal_error()));
    }

    #[test]
    fn a_flow_that_never_ends_is_stopped() {
        let io = Io::default();
        let flow_io = io.clone();
        let mut machine = Machine::new(io, async move {
            loop {
                flow_io.await_settings().await;
            }
        });
        let mut last = machine.resume(Outcome::Start);
        for _ in 0..MAX_STEPS {
            last = machine.resume(Outcome::Waited);
        }
        assert_eq!(last, Step::Respond(internal_error()));
    }
}
