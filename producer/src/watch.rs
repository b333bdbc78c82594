//! Filesystem notifications for the inbox, so new files and appended lines
//! are seen at once instead of at the next poll.
//!
//! Notifications only wake the loop; what changed is always found by looking
//! (listing the folder, comparing sizes), so a lost or coalesced event costs
//! at most one rescan interval, never data.

use std::path::Path;
use std::sync::Arc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::warn;

/// Keeps the watch alive; dropping it stops the notifications.
pub struct InboxWatcher {
    _watcher: RecommendedWatcher,
}

impl InboxWatcher {
    /// Watches `inbox` and wakes `wake` on every change in it. `None`, with a
    /// warning, where the filesystem offers no notifications: the caller then
    /// polls.
    pub fn start(inbox: &Path, wake: Arc<Notify>) -> Option<InboxWatcher> {
        let watched = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| wake.notify_one())
            .and_then(|mut watcher| watcher.watch(inbox, RecursiveMode::NonRecursive).map(|()| watcher));
        match watched {
            Ok(watcher) => Some(InboxWatcher { _watcher: watcher }),
            Err(error) => {
                warn!(message = "No filesystem notifications for the inbox; polling instead.",
                      inbox = %inbox.display(), %error);
                None
            }
        }
    }
}
