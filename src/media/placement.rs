//! Which shard hosts each room: a room's legs must share one shard (forwarding never crosses
//! threads), so a new room goes to the shard with the fewest legs and stays there while it has
//! members; an empty room is forgotten and may land elsewhere next time. Two rooms on a
//! two-shard server therefore use both shards, whatever their names.

use parking_lot::Mutex;
use std::collections::HashMap;

/// See the module documentation.
#[derive(Debug)]
pub struct Placement {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Room → (shard, legs in it).
    rooms: HashMap<String, (usize, usize)>,
    /// Legs per shard.
    legs: Vec<usize>,
}

impl Placement {
    pub fn new(shards: usize) -> Self {
        Self {
            state: Mutex::new(State {
                rooms: HashMap::new(),
                legs: vec![0; shards.max(1)],
            }),
        }
    }

    /// A leg joins `room`: the room's shard (placed now if it is new).
    pub fn enter(&self, room: &str) -> usize {
        let mut state = self.state.lock();
        let shard = match state.rooms.get_mut(room) {
            Some((shard, legs)) => {
                *legs += 1;
                *shard
            }
            None => {
                let shard = (0..state.legs.len())
                    .min_by_key(|s| state.legs[*s])
                    .unwrap_or(0);
                state.rooms.insert(room.to_owned(), (shard, 1));
                shard
            }
        };
        state.legs[shard] += 1;
        shard
    }

    /// A leg of `room` left.
    pub fn leave(&self, room: &str) {
        let mut state = self.state.lock();
        let Some((shard, legs)) = state.rooms.get_mut(room) else {
            return;
        };
        let shard = *shard;
        *legs -= 1;
        if *legs == 0 {
            state.rooms.remove(room);
        }
        state.legs[shard] = state.legs[shard].saturating_sub(1);
    }

    /// The shard hosting `room`, if it has legs.
    pub fn shard_of(&self, room: &str) -> Option<usize> {
        self.state.lock().rooms.get(room).map(|(shard, _)| *shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rooms_go_to_the_least_loaded_shard_and_stay_while_occupied() {
        let p = Placement::new(2);
        let a = p.enter("a");
        assert_eq!(p.enter("a"), a);
        let b = p.enter("b");
        assert_ne!(a, b, "the second room takes the other shard");
        p.leave("a");
        assert_eq!(p.shard_of("a"), Some(a), "one leg still in it");
        p.leave("a");
        assert_eq!(p.shard_of("a"), None);
        p.leave("a"); // a stray leave changes nothing
        assert_eq!(p.shard_of("b"), Some(b));
    }
}
