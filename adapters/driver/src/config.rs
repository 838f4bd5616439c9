//! One configuration type: the core's protocol settings plus the adapter's buffers.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Everything configurable about a connection: the protocol settings of
/// [`tether_core::Config`] (limits, timers, permessage-deflate), reached directly through
/// `Deref`, plus the adapter's own buffer settings.
///
/// ```
/// use std::time::Duration;
/// let mut config = tether_driver::Config::default();
/// config.deflate.enabled = true; // a tether_core::Config field
/// config.timeouts.ping_interval = Some(Duration::from_secs(30));
/// config.write_high_water_mark = 64 * 1024; // an adapter field
/// ```
///
/// The protocol part is held in an [`Arc`], so cloning a `Config` for every connection
/// shares it instead of copying it. [`tether_core::Config::stream_fragments`] is not
/// supported by the adapters and is ignored: they always deliver whole messages.
#[derive(Clone, Debug)]
pub struct Config {
    protocol: Arc<tether_core::Config>,
    /// Sends wait while at least this many bytes are queued and not yet written to the
    /// transport (see [`crate::WebSocket::buffered_amount`]). A single message larger than
    /// this is still accepted when the queue is below the mark. Default 128 KiB; a mark of
    /// 4 GiB or more counts as 4 GiB.
    pub write_high_water_mark: usize,
    /// How many bytes the driver asks the transport for in one read. The read buffer is
    /// held only while data is arriving; a waiting connection parks it in a small
    /// per-thread pool. Default 32 KiB; 4 GiB or more counts as 4 GiB.
    pub read_buffer_size: usize,
}

impl Config {
    /// The protocol settings, as shared with every connection made from this config.
    pub fn protocol(&self) -> &Arc<tether_core::Config> {
        &self.protocol
    }

    /// The protocol settings a connection runs with (whole messages only).
    pub(crate) fn connection_config(&self) -> Arc<tether_core::Config> {
        if self.protocol.stream_fragments {
            let mut c = (*self.protocol).clone();
            c.stream_fragments = false;
            Arc::new(c)
        } else {
            self.protocol.clone()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::from(tether_core::Config::default())
    }
}

impl From<tether_core::Config> for Config {
    fn from(protocol: tether_core::Config) -> Self {
        Self::from(Arc::new(protocol))
    }
}

impl From<Arc<tether_core::Config>> for Config {
    fn from(protocol: Arc<tether_core::Config>) -> Self {
        Self {
            protocol,
            write_high_water_mark: 128 * 1024,
            read_buffer_size: 32 * 1024,
        }
    }
}

impl Deref for Config {
    type Target = tether_core::Config;
    fn deref(&self) -> &tether_core::Config {
        &self.protocol
    }
}

impl DerefMut for Config {
    /// Copies the protocol settings first if another `Config` shares them.
    fn deref_mut(&mut self) -> &mut tether_core::Config {
        Arc::make_mut(&mut self.protocol)
    }
}
