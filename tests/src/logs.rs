//! Captures what the code under test logs with `tracing`, so a test can check that a fault
//! was logged.
//!
//! One global subscriber is installed, once, the first time a test captures. It is
//! interested in every callsite up to [`LEVEL`] (`Interest::always`), whichever thread
//! hits the callsite first, and decides per event whether the current thread is capturing.
//! (A per-thread subscriber, `tracing::subscriber::set_default`, is not enough while other
//! tests run in parallel without one: a callsite first hit on such a thread is cached as
//! "never interesting" for the whole process, and the capturing test then sees nothing.)

use std::cell::RefCell;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Once};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The most verbose level captured (`INFO`, `WARN` and `ERROR` events are).
pub const LEVEL: Level = Level::INFO;

/// Log output collected since the last [`take`](Self::take).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Everything logged so far, emptying the buffer.
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

thread_local! {
    /// Where the events of this thread go, while a [`Capturing`] guard of this thread lives.
    static CURRENT: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// The capture buffer of the current thread, if it is capturing.
fn current() -> Option<Logs> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Collects every log event (up to [`LEVEL`]) of the current thread until the guard is
/// dropped. Tests on tokio's default current-thread runtime see the logs of their test
/// server's tasks too, which run on the same thread; events of other threads are not
/// captured.
pub fn capture() -> (Logs, Capturing) {
    install();
    let logs = Logs::default();
    let previous = CURRENT.with(|current| current.replace(Some(logs.clone())));
    (
        logs,
        Capturing {
            previous,
            _this_thread: PhantomData,
        },
    )
}

/// Returned by [`capture`]: the current thread captures until this is dropped (then the
/// capture that was active before, if any, is active again).
#[must_use = "capturing stops when the guard is dropped"]
pub struct Capturing {
    previous: Option<Logs>,
    /// Not `Send`: it must be dropped on the thread that captures.
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Capturing {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Nothing to restore if the thread is being torn down.
        let _ = CURRENT.try_with(|current| current.replace(previous));
    }
}

/// Installs the process-wide subscriber, once. If something else set a global default
/// first, that one stays (and nothing is captured, which the capturing test will show).
fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(EveryCallsite).with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(ToCurrentCapture),
        );
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Interested in every callsite up to [`LEVEL`], always (never "sometimes" or "never"
/// depending on the thread that happened to register it); the choice of capturing is made
/// per event, by the thread that emits it.
struct EveryCallsite;

impl<S: Subscriber> Layer<S> for EveryCallsite {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if *metadata.level() <= LEVEL {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        *metadata.level() <= LEVEL
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(LEVEL))
    }

    fn event_enabled(&self, _: &Event<'_>, _: Context<'_, S>) -> bool {
        // Not cached by tracing: asked for each event, on the thread that emits it.
        CURRENT
            .try_with(|current| current.borrow().is_some())
            .unwrap_or(false)
    }
}

/// Writes each formatted event to the capture buffer of the thread that emits it.
struct ToCurrentCapture;

/// The capture buffer of the emitting thread, or nowhere if it is not capturing.
struct CurrentCaptureWriter(Option<Logs>);

impl Write for CurrentCaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(logs) => logs.write(bytes),
            None => Ok(bytes.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ToCurrentCapture {
    type Writer = CurrentCaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CurrentCaptureWriter(current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_this_thread_only_and_stops_with_the_guard() {
        let (logs, capturing) = capture();
        tracing::warn!("on the capturing thread");
        std::thread::spawn(|| tracing::warn!("on another thread"))
            .join()
            .unwrap();
        tracing::debug!("too verbose");
        let logged = logs.take();
        assert!(logged.contains("WARN") && logged.contains("on the capturing thread"));
        assert!(!logged.contains("on another thread"), "{logged}");
        assert!(!logged.contains("too verbose"), "{logged}");
        drop(capturing);
        tracing::warn!("after the guard");
        assert_eq!(logs.take(), "");
    }

    #[test]
    fn a_callsite_first_hit_without_capture_is_still_captured_later() {
        fn log_it(what: &str) {
            tracing::warn!("callsite shared by threads: {what}");
        }
        // First hit on a thread that does not capture...
        std::thread::spawn(|| log_it("not captured"))
            .join()
            .unwrap();
        // ...does not make the callsite uninteresting for this one.
        let (logs, _capturing) = capture();
        log_it("captured");
        let logged = logs.take();
        assert!(logged.contains("captured") && !logged.contains("not captured"));
    }

    #[test]
    fn nested_captures_restore_the_outer_one() {
        let (outer, _outer) = capture();
        {
            let (inner, _inner) = capture();
            tracing::info!("inner event");
            assert!(inner.take().contains("inner event"));
        }
        tracing::info!("outer event");
        let logged = outer.take();
        assert!(logged.contains("outer event") && !logged.contains("inner event"));
    }
}
