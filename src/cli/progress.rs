//! Progress bars on stderr (hidden when stderr is not a terminal or under `--quiet`).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miner::mine::Progress;

/// Shows one bar per phase.
#[derive(Debug)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    hidden: bool,
}

impl Bars {
    pub fn new(hidden: bool) -> Bars {
        Bars {
            bar: Mutex::new(None),
            hidden,
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} ({elapsed})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg:>18} {spinner} ({elapsed})")
                    .expect("a valid template"),
            ),
        };
        if self.hidden {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
        bar.set_message(phase.to_owned());
        *self.bar.lock().expect("not poisoned") = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.bar.lock().expect("not poisoned").as_ref() {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
    }
}
