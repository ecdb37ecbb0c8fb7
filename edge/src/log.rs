//! The edge's log lines: the Workers console on wasm32 (Workers Logs keep them), standard error
//! in native tests. Never a secret or a raw token: callers pass what may be read.

#[cfg(target_arch = "wasm32")]
pub fn error(message: &str) {
    worker::console_error!("latch-edge: {message}");
}

#[cfg(target_arch = "wasm32")]
pub fn warn(message: &str) {
    worker::console_warn!("latch-edge: {message}");
}

#[cfg(not(target_arch = "wasm32"))]
pub fn error(message: &str) {
    eprintln!("latch-edge error: {message}");
}

#[cfg(not(target_arch = "wasm32"))]
pub fn warn(message: &str) {
    eprintln!("latch-edge warning: {message}");
}
