//! Room → node placement. `chorus:room:<name>` names the node a room lives on. The first join
//! picks the least-loaded live, non-draining node and claims the room for it in one Lua script
//! (atomic in Redis), so two nodes seeing a first join at once still agree on one owner. The
//! owner renews the claim every heartbeat while the room is open and deletes it when the room
//! closes; an owner that stops heartbeating loses it with its record, and the next join
//! places the room anew.

use super::registry::{node_key, RoomLoad};
use super::{Cluster, NodeRecord, KEY_PREFIX};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

/// Where a room lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// On this node.
    Local,
    /// On another node, reached at its record's `url`.
    Remote(NodeRecord),
}

/// Returns the current owner if it is alive; else claims the room for the candidate (if the
/// candidate is alive) and returns it. KEYS[1] room key; ARGV: candidate, lease ms, node key
/// prefix.
const PLACE: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
if redis.call('EXISTS', ARGV[3] .. ARGV[1]) == 0 then
  return false
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
";

/// Extends the claim if this node holds it. KEYS[1] room key; ARGV: node, lease ms.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the claim if this node holds it. KEYS[1] room key; ARGV: node.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

fn room_key(room: &str) -> String {
    format!("{KEY_PREFIX}room:{room}")
}

/// The cluster's relay key: set once by the first node, read by the others.
pub(super) async fn relay_key(redis: &mut ConnectionManager) -> redis::RedisResult<String> {
    let key = format!("{KEY_PREFIX}relay-key");
    let fresh = format!("{:032x}", rand::random::<u128>());
    let _: bool = redis.set_nx(&key, &fresh).await?;
    redis.get(&key).await
}

/// The least-loaded live node that is not draining, if any; on a tie `prefer` (the node asking:
/// no relay needed), then the first id.
pub fn least_loaded<'a>(nodes: &'a [NodeRecord], prefer: &str) -> Option<&'a NodeRecord> {
    nodes
        .iter()
        .filter(|n| !n.draining)
        .min_by_key(|n| (n.load(), n.id != prefer, n.id.clone()))
}

impl Cluster {
    /// Where room `name` lives, placing it (on the least-loaded live, non-draining node) if it
    /// lives nowhere. `draining` is this node's own state, which may be newer than its record.
    pub async fn place(&self, room: &str, draining: bool) -> Result<Placement, redis::RedisError> {
        let result = super::bounded(self.place_inner(room, draining)).await;
        let label = match &result {
            Ok(Placement::Local) => "local",
            Ok(Placement::Remote(_)) => "remote",
            Err(error) => {
                self.redis_failed("place", error);
                "error"
            }
        };
        self.metrics.placements.with_label_values(&[label]).inc();
        result
    }

    async fn place_inner(&self, room: &str, draining: bool) -> redis::RedisResult<Placement> {
        let candidate = self.candidate(draining);
        let lease = self.timeout.as_millis() as u64;
        let mut redis = self.redis();
        let owner: Option<String> = Script::new(PLACE)
            .key(room_key(room))
            .arg(&candidate)
            .arg(lease)
            .arg(node_key(""))
            .invoke_async(&mut redis)
            .await?;
        let owner = match owner {
            Some(owner) => owner,
            // The candidate died since the last heartbeat: look again, then fall back to here.
            None => {
                self.refresh_nodes().await;
                let retry: Option<String> = Script::new(PLACE)
                    .key(room_key(room))
                    .arg(self.candidate(draining))
                    .arg(lease)
                    .arg(node_key(""))
                    .invoke_async(&mut redis)
                    .await?;
                retry.unwrap_or_else(|| self.node_id.clone())
            }
        };
        if owner == self.node_id {
            return Ok(Placement::Local);
        }
        // Its record as of now: a node restarted under the same id has a new address.
        self.owner_record(&owner).await
    }

    /// The node to place a new room on: the least-loaded live node that is not draining, else
    /// this node.
    fn candidate(&self, draining: bool) -> String {
        let nodes = self.nodes.read();
        let usable: Vec<NodeRecord> = nodes
            .iter()
            .filter(|n| !(draining && n.id == self.node_id))
            .cloned()
            .collect();
        least_loaded(&usable, &self.node_id).map_or_else(|| self.node_id.clone(), |n| n.id.clone())
    }

    /// Reads the current record of node `owner`.
    async fn owner_record(&self, owner: &str) -> redis::RedisResult<Placement> {
        let mut redis = self.redis();
        let json: Option<String> = redis.get(node_key(owner)).await?;
        match json.and_then(|j| serde_json::from_str::<NodeRecord>(&j).ok()) {
            Some(record) => Ok(Placement::Remote(record)),
            None => Err(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "the room's node has no readable record",
            ))),
        }
    }

    /// Renews the claims of the rooms open here; releases those of rooms closed since the last
    /// call (`before`). Returns the names now hosted.
    pub(super) async fn renew_rooms(&self, rooms: &[RoomLoad], before: Vec<String>) -> Vec<String> {
        let now: Vec<String> = rooms.iter().map(|r| r.name.clone()).collect();
        let lease = self.timeout.as_millis() as u64;
        let mut redis = self.redis();
        for room in &now {
            let renewed: redis::RedisResult<i64> = Script::new(RENEW)
                .key(room_key(room))
                .arg(&self.node_id)
                .arg(lease)
                .invoke_async(&mut redis)
                .await;
            match renewed {
                Ok(1) => {}
                Ok(_) => tracing::warn!(room = %room, "room open here is placed on another node"),
                Err(error) => self.redis_failed("renew", &error),
            }
        }
        for room in before.iter().filter(|r| !now.contains(r)) {
            self.release_room(room).await;
            self.forget_chat(room).await;
        }
        now
    }

    /// Deletes this node's claim on `room`.
    pub(super) async fn release_room(&self, room: &str) {
        let mut redis = self.redis();
        let released: redis::RedisResult<i64> = Script::new(RELEASE)
            .key(room_key(room))
            .arg(&self.node_id)
            .invoke_async(&mut redis)
            .await;
        if let Err(error) = released {
            self.redis_failed("release", &error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: usize, draining: bool) -> NodeRecord {
        NodeRecord {
            id: id.to_owned(),
            url: format!("ws://{id}"),
            media: Vec::new(),
            rooms: Vec::new(),
            participants,
            forwarded_pps: 0.0,
            cpu: 0.0,
            draining,
            heartbeat_ms: 0,
        }
    }

    #[test]
    fn the_least_loaded_node_that_is_not_draining_is_chosen() {
        let nodes = [node("a", 5, false), node("b", 1, true), node("c", 3, false)];
        let chosen = |nodes, prefer| least_loaded(nodes, prefer).map(|n| n.id.clone());
        assert_eq!(chosen(&nodes, "a").as_deref(), Some("c"));
        let all_draining = [node("a", 0, true)];
        assert_eq!(chosen(&all_draining, "a"), None);
        let tie = [
            node("b", 2, false),
            node("a", 2, false),
            node("c", 2, false),
        ];
        assert_eq!(chosen(&tie, "x").as_deref(), Some("a"), "first id");
        assert_eq!(chosen(&tie, "c").as_deref(), Some("c"), "the asking node");
    }
}
