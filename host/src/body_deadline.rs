//! A request body's deadline: `hooksign serve` hands the component a body
//! that notes when it has all arrived, so a body dripped a byte at a time
//! cannot hold a connection and an instance until the request deadline
//! (issue #27). Headers have hyper's header timeout; this is the body's.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;

/// Whether a body has all arrived (or broke off).
#[derive(Clone)]
pub struct Arrival(Arc<watch::Sender<bool>>);

impl Arrival {
    /// Returns once `within` has passed with the body still arriving;
    /// never, once it has arrived.
    pub async fn overdue(&self, within: Duration) {
        let mut ended = self.0.subscribe();
        if tokio::time::timeout(within, ended.wait_for(|ended| *ended))
            .await
            .is_ok()
        {
            std::future::pending::<()>().await;
        }
    }

    fn end(&self) {
        self.0.send_replace(true);
    }
}

/// A body that tells its [`Arrival`] when it ends.
pub struct Watched<B> {
    inner: B,
    arrival: Arrival,
}

/// The request with its body watched, and the body's arrival.
pub fn watch<B: Body>(request: hyper::Request<B>) -> (hyper::Request<Watched<B>>, Arrival) {
    let arrival = Arrival(Arc::new(watch::Sender::new(false)));
    let request = request.map(|inner| {
        let watched = Watched {
            inner,
            arrival: arrival.clone(),
        };
        if watched.inner.is_end_stream() {
            watched.arrival.end();
        }
        watched
    });
    (request, arrival)
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.arrival.end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
