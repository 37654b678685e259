//! A plain HTTP/1.1 server on loopback for the tests' and the load
//! bench's receivers: a thread per connection, kept alive until the client
//! closes it, as real receivers serve the kept-alive connections that
//! `hooksign serve` (and a Spin) sends on. A server that queues new
//! connections while its few threads wait on idle ones would stall a
//! delivery for as long as the sender keeps its connection idle
//! (docs/DEPLOYING.md, `--no-connection-pooling`).

#![allow(dead_code)] // not every test file uses every helper

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A request as it arrived.
pub struct Request {
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The answer to a request.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `status` with no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=UTF-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A server running on its own threads.
pub struct Served {
    pub address: SocketAddr,
    /// How many connections it has taken.
    pub connections: Arc<AtomicUsize>,
}

/// Serves `handle` on a free loopback port. Each connection gets a thread
/// of its own, so a handler that takes its time holds up no other
/// connection.
pub fn serve(handle: impl Fn(Request) -> Response + Send + Sync + 'static) -> Served {
    serve_closing_idle(None, handle)
}

/// [`serve`], closing a connection idle for `idle_close` without a word,
/// as Node's server closes one after its `keepAliveTimeout`.
pub fn serve_closing_idle(
    idle_close: Option<Duration>,
    handle: impl Fn(Request) -> Response + Send + Sync + 'static,
) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let taken = connections.clone();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            taken.fetch_add(1, Ordering::SeqCst);
            let handle = handle.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(idle_close);
                let _ = serve_connection(stream, &*handle);
            });
        }
    });
    Served {
        address,
        connections,
    }
}

/// Answers the connection's requests in turn until it closes.
fn serve_connection(
    stream: TcpStream,
    handle: &(impl Fn(Request) -> Response + ?Sized),
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some((request, close)) = read_request(&mut reader)? {
        writer.write_all(&encode(&handle(request), close))?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// The next request and whether its client asked to close after it;
/// `None` when the connection ends first.
fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(Request, bool)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(candidate, _): &&(String, String)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_ascii_lowercase())
    };
    let close = find("connection").is_some_and(|value| value.contains("close"));
    let body = if find("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        read_chunked(reader)?
    } else {
        let length = find("content-length").map_or(0, |value| value.parse().unwrap_or(0));
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    Ok(Some((request, close)))
}

/// A chunked body, its trailers passed over.
fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(std::io::Error::other)?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

/// `response` as it goes on the wire.
fn encode(response: &Response, close: bool) -> Vec<u8> {
    let reason = hyper::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // 1xx, 204 and 304 carry no body, and say no length.
    let bodiless = response.status < 200 || response.status == 204 || response.status == 304;
    if !bodiless {
        head.push_str(&format!("content-length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut encoded = head.into_bytes();
    if !bodiless {
        encoded.extend_from_slice(&response.body);
    }
    encoded
}

/// A receiver that answers 204 after `delay` and counts the requests and
/// the connections they came on; one idle for `idle_close` it closes.
pub struct Counting {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
}

impl Counting {
    pub fn start(delay: Duration, idle_close: Option<Duration>) -> Counting {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let served = serve_closing_idle(idle_close, move |_| {
            std::thread::sleep(delay);
            counted.fetch_add(1, Ordering::SeqCst);
            Response::empty(204)
        });
        Counting {
            url: format!("http://{}/hook", served.address),
            requests,
            connections: served.connections,
        }
    }

    /// Waits up to `seconds` for at least `count` requests; returns the count.
    pub fn wait_for(&self, count: usize, seconds: u64) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        while self.requests.load(Ordering::SeqCst) < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.requests.load(Ordering::SeqCst)
    }
}
