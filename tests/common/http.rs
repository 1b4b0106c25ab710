//! A small HTTP/1.1 client for the server tests (loopback only), and a running server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `data:` payloads of a server-sent event stream.
    pub fn events(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    }
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    stream
}

fn send(stream: &mut TcpStream, addr: &str, method: &str, path: &str, body: &str) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
}

/// Reads the status line and headers; says whether the body is chunked.
fn read_head(reader: &mut impl BufRead) -> (u16, bool) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line `{line}`"));
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    (status, chunked)
}

/// Reads one chunk of a chunked body; `None` at the end.
fn read_chunk(reader: &mut impl BufRead) -> Option<String> {
    let mut size = String::new();
    if reader.read_line(&mut size).unwrap_or(0) == 0 {
        return None;
    }
    let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
    if n == 0 {
        return None;
    }
    let mut buf = vec![0; n + 2];
    reader.read_exact(&mut buf).unwrap();
    buf.truncate(n);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Sends a request and reads the whole answer.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> Reply {
    let mut stream = connect(addr);
    send(&mut stream, addr, method, path, body);
    let mut reader = BufReader::new(stream);
    let (status, chunked) = read_head(&mut reader);
    let mut body = String::new();
    if chunked {
        while let Some(c) = read_chunk(&mut reader) {
            body.push_str(&c);
        }
    } else {
        reader.read_to_string(&mut body).unwrap();
    }
    Reply { status, body }
}

pub fn post(addr: &str, path: &str, body: &serde_json::Value) -> Reply {
    request(addr, "POST", path, &body.to_string())
}

pub fn get(addr: &str, path: &str) -> Reply {
    request(addr, "GET", path, "")
}

/// A streaming request: `started` is called once the first event arrives, then the rest
/// is read.
pub fn stream(addr: &str, path: &str, body: &serde_json::Value, started: impl FnOnce()) -> Reply {
    let mut stream = connect(addr);
    send(&mut stream, addr, "POST", path, &body.to_string());
    let mut reader = BufReader::new(stream);
    let (status, chunked) = read_head(&mut reader);
    assert!(chunked, "a stream is chunked (status {status})");
    let mut body = String::new();
    let mut started = Some(started);
    while let Some(c) = read_chunk(&mut reader) {
        body.push_str(&c);
        if body.contains("data: ")
            && let Some(f) = started.take()
        {
            f();
        }
    }
    Reply { status, body }
}

/// `netnomos serve` running in the background; stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts `netnomos serve --config config` on a free loopback port.
    pub fn start(config: &Path) -> Server {
        let log = config.with_extension("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_netnomos"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(["--bind", "127.0.0.1:0"])
            .env("NETNOMOS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("netnomos serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let Some(addr) = first.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            panic!(
                "the server did not start: `{first}`; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server {
            addr: addr.to_owned(),
            child,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
