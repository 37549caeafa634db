//! Name lookups that share calls. Every CreateVolume looks its name up before it creates (the
//! CSI idempotency guarantee), and a cloud's name filter takes one name, so a burst of N creates
//! would cost N lookups. Here one lookup runs at a time; the names that arrive while it runs
//! are answered together by the next call: a listing of every volume the cluster owns when that
//! takes fewer calls than asking for each name, otherwise one name query each, concurrently.
//! An isolated lookup is a single name query, as before, and waits for nothing.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::error::CloudError;
use super::types::Volume;

/// Where names are looked up.
#[async_trait::async_trait]
pub trait NameSource: Send + Sync + 'static {
    /// The volumes named exactly `name`.
    async fn by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError>;

    /// Every volume the cluster owns, page by page; `None` when this source cannot list them by
    /// owner (then every lookup is a name query).
    async fn owned_page(
        &self,
        marker: Option<&str>,
    ) -> Option<Result<(Vec<Volume>, Option<String>), CloudError>>;
}

/// How many name queries one page of the owner listing must save before the listing is used:
/// a page of volumes is a heavier call than a name query.
const NAMES_PER_PAGE: usize = 4;
/// Volumes per page of the owner listing (Cinder's default `osapi_max_limit`).
const PAGE_SIZE: usize = 1000;

type Reply = oneshot::Sender<Result<Vec<Volume>, CloudError>>;

/// The batching front of a [`NameSource`]; cheap to share.
#[derive(Debug)]
pub struct NameLookups {
    requests: mpsc::UnboundedSender<(String, Reply)>,
}

impl NameLookups {
    /// Starts the lookup task; must be called inside the runtime.
    pub fn new(source: impl NameSource) -> Self {
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(serve(Arc::new(source), queue));
        Self { requests }
    }

    /// The volumes named exactly `name`.
    pub async fn find(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || CloudError::Unavailable("the name lookup task stopped".into());
        self.requests.send((name.to_string(), reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn serve<S: NameSource>(source: Arc<S>, mut queue: mpsc::UnboundedReceiver<(String, Reply)>) {
    // What the last owner listing found: how many pages the next one will take.
    let mut owned = 0usize;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = queue.try_recv() {
            batch.push(more);
        }
        let pages = owned.div_ceil(PAGE_SIZE).max(1);
        if batch.len() >= pages * NAMES_PER_PAGE
            && let Some(listing) = list_owned(source.as_ref()).await
        {
            match listing {
                Ok(volumes) => {
                    owned = volumes.len();
                    answer_from(volumes, batch);
                    continue;
                }
                Err(e) => tracing::debug!(error = %e, "owner listing failed; asking for each name"),
            }
        }
        each_by_name(&source, batch).await;
    }
}

/// Every volume the cluster owns, across the source's pages; `None` when it cannot list them.
pub async fn list_owned(source: &impl NameSource) -> Option<Result<Vec<Volume>, CloudError>> {
    let mut volumes = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        match source.owned_page(marker.as_deref()).await? {
            Ok((page, next)) => {
                volumes.extend(page);
                match next {
                    Some(next) if Some(&next) != marker.as_ref() => marker = Some(next),
                    _ => return Some(Ok(volumes)),
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

fn answer_from(volumes: Vec<Volume>, batch: Vec<(String, Reply)>) {
    let mut by_name: HashMap<String, Vec<Volume>> = HashMap::new();
    for volume in volumes {
        by_name.entry(volume.name.clone()).or_default().push(volume);
    }
    for (name, reply) in batch {
        let _ = reply.send(Ok(by_name.get(&name).cloned().unwrap_or_default()));
    }
}

async fn each_by_name<S: NameSource>(source: &Arc<S>, batch: Vec<(String, Reply)>) {
    let mut queries = tokio::task::JoinSet::new();
    for (name, reply) in batch {
        let source = source.clone();
        queries.spawn(async move {
            let _ = reply.send(source.by_name(&name).await);
        });
    }
    queries.join_all().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::cloud::types::VolumeStatus;

    /// A source whose calls take a while and are counted.
    #[derive(Default)]
    struct Slow {
        volumes: Vec<Volume>,
        can_list: bool,
        calls: Mutex<Vec<String>>,
    }

    fn volume(name: &str) -> Volume {
        Volume {
            id: format!("id-{name}"),
            name: name.into(),
            size_gib: 1,
            status: VolumeStatus::Available,
            zone: "nova".into(),
            volume_type: None,
            multiattach: false,
            attachments: Vec::new(),
            metadata: Default::default(),
            source_snapshot_id: None,
            source_volume_id: None,
            wwn: None,
        }
    }

    #[async_trait::async_trait]
    impl NameSource for Arc<Slow> {
        async fn by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
            self.calls.lock().unwrap().push(format!("name={name}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(self.volumes.iter().filter(|v| v.name == name).cloned().collect())
        }

        async fn owned_page(
            &self,
            _marker: Option<&str>,
        ) -> Option<Result<(Vec<Volume>, Option<String>), CloudError>> {
            if !self.can_list {
                return None;
            }
            self.calls.lock().unwrap().push("owned".into());
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some(Ok((self.volumes.clone(), None)))
        }
    }

    async fn burst(source: Arc<Slow>, names: usize) -> Vec<Vec<Volume>> {
        let lookups = Arc::new(NameLookups::new(source));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..names {
            let lookups = lookups.clone();
            tasks.spawn(async move { (i, lookups.find(&format!("pvc-{i}")).await.unwrap()) });
            // Let the first lookup start before the rest arrive.
            tokio::task::yield_now().await;
        }
        let mut found = tasks.join_all().await;
        found.sort_by_key(|(i, _)| *i);
        found.into_iter().map(|(_, v)| v).collect()
    }

    #[tokio::test]
    async fn a_burst_of_lookups_shares_one_owner_listing() {
        let source = Arc::new(Slow {
            volumes: vec![volume("pvc-3"), volume("other")],
            can_list: true,
            ..Default::default()
        });
        let found = burst(source.clone(), 20).await;
        assert_eq!(found[3], vec![volume("pvc-3")]);
        assert!(found.iter().enumerate().all(|(i, v)| i == 3 || v.is_empty()));
        let calls = source.calls.lock().unwrap().clone();
        assert!(calls.len() <= 3, "20 lookups took {} calls: {calls:?}", calls.len());
        assert!(calls.contains(&"owned".to_string()), "{calls:?}");
    }

    #[tokio::test]
    async fn without_an_owner_listing_every_name_is_queried() {
        let source = Arc::new(Slow { volumes: vec![volume("pvc-3")], can_list: false, ..Default::default() });
        let found = burst(source.clone(), 10).await;
        assert_eq!(found[3], vec![volume("pvc-3")]);
        assert_eq!(source.calls.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn a_single_lookup_is_one_name_query() {
        let source = Arc::new(Slow { volumes: vec![volume("pvc-0")], can_list: true, ..Default::default() });
        let found = burst(source.clone(), 1).await;
        assert_eq!(found[0], vec![volume("pvc-0")]);
        assert_eq!(*source.calls.lock().unwrap(), vec!["name=pvc-0".to_string()]);
    }
}
