//! Which simulcast layer one subscriber leg receives: the target layer (chosen from what the
//! subscriber renders and what its link carries, [`choose`]) and the layer it is on now. A
//! switch happens only at the first packet of a keyframe of the target layer, so the receiver
//! never gets a delta frame of a layer whose keyframe it has not had; until then the current
//! layer keeps flowing. Pure and clock-free.

/// What one layer of a publication looks like right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerView {
    /// Packets arrived recently (a layer the publisher stopped is not chosen).
    pub active: bool,
    /// Its measured bitrate in bits/s (0 until measured).
    pub bitrate: u64,
    /// Width and height from its last keyframe, when known.
    pub size: Option<(u16, u16)>,
    /// How many layers the publisher declared above this one (0: the top one), seen or not;
    /// `None`: count the layers of the list above it.
    pub below_top: Option<usize>,
}

/// What the subscriber asked for (the `video-size` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Want {
    /// No hint: the top layer.
    #[default]
    Top,
    /// The size it renders the track at: the lowest layer that covers it.
    Size { width: u32, height: u32 },
    /// At most this layer (0 is the lowest).
    Layer(usize),
}

/// The size layer `i` of `layers` is assumed to have when its keyframes did not say yet (no
/// keyframe seen, or a codec whose sizes are not read: VP9, AV1): the known size of another layer scaled by 2 per declared step (the
/// browsers' default 1/4, 1/2, 1), or a 1280×720 top declared layer. Steps count the
/// declared layers, so a top layer that never started (a busy encoder) does not make the ones
/// below it look twice as large.
fn size_of(layers: &[LayerView], i: usize) -> (u64, u64) {
    if let Some((w, h)) = layers[i].size {
        return (u64::from(w), u64::from(h));
    }
    let below_top = |j: usize| layers[j].below_top.unwrap_or(layers.len() - 1 - j);
    let known = layers
        .iter()
        .enumerate()
        .find_map(|(j, l)| l.size.map(|s| (below_top(j), s)));
    let (from, (w, h)) = known.unwrap_or((0, (1280, 720)));
    let (w, h) = (u64::from(w), u64::from(h));
    let to = below_top(i);
    if to >= from {
        (w >> (to - from).min(16), h >> (to - from).min(16))
    } else {
        (w << (from - to).min(16), h << (from - to).min(16))
    }
}

/// The layer a leg should receive: the highest active layer allowed by `want` whose bitrate
/// fits `budget` (bits/s available to this track on the leg; `None`: no limit); the lowest
/// active layer when none fits. `None` when no layer is active.
pub fn choose(layers: &[LayerView], want: Want, budget: Option<u64>) -> Option<usize> {
    let active: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].active).collect();
    let (&lowest, &highest) = (active.first()?, active.last()?);
    let ceiling = match want {
        Want::Top => highest,
        Want::Layer(max) => active
            .iter()
            .copied()
            .filter(|&i| i <= max)
            .max()
            .unwrap_or(lowest),
        Want::Size { width, height } => active
            .iter()
            .copied()
            .find(|&i| {
                let (w, h) = size_of(layers, i);
                w >= u64::from(width) && h >= u64::from(height)
            })
            .unwrap_or(highest),
    };
    let Some(budget) = budget else {
        return Some(ceiling);
    };
    Some(
        active
            .iter()
            .copied()
            .filter(|&i| i <= ceiling && layers[i].bitrate <= budget)
            .max()
            .unwrap_or(lowest),
    )
}

/// What to do with one packet of a simulcast publication on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it; `switched`: it is the first packet of the leg's new layer (re-anchor the
    /// numbering before rewriting it).
    Forward { switched: bool },
    /// Not this leg's layer (or a delta frame of a layer it has no keyframe of).
    Drop,
}

/// One leg's layer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSelector {
    current: Option<usize>,
    target: Option<usize>,
}

impl LayerSelector {
    /// The layer the leg receives now.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The layer the leg should receive.
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// Sets the layer to move to; true if it changed.
    pub fn set_target(&mut self, target: Option<usize>) -> bool {
        std::mem::replace(&mut self.target, target) != target
    }

    /// The layer whose keyframe the leg waits for, if it is not on its target.
    pub fn waiting_for(&self) -> Option<usize> {
        self.target.filter(|t| Some(*t) != self.current)
    }

    /// A layer was inserted at index `at` (it started after higher ones): the indices of the
    /// layers at or above it moved up by one, and so do this leg's.
    pub fn layer_inserted(&mut self, at: usize) {
        let shift = |l: Option<usize>| l.map(|l| if l >= at { l + 1 } else { l });
        self.current = shift(self.current);
        self.target = shift(self.target);
    }

    /// The stream restarts on the leg (negotiated, unmuted): nothing until a keyframe of the
    /// target layer.
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// A packet of `layer` arrived; `keyframe` says whether it starts a keyframe.
    pub fn on_packet(&mut self, layer: usize, keyframe: bool) -> Verdict {
        if keyframe && Some(layer) == self.target && self.current != self.target {
            self.current = self.target;
            return Verdict::Forward { switched: true };
        }
        if Some(layer) == self.current {
            return Verdict::Forward { switched: false };
        }
        Verdict::Drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(bitrates: [u64; 3]) -> Vec<LayerView> {
        bitrates
            .iter()
            .map(|&bitrate| LayerView {
                active: true,
                bitrate,
                size: None,
                below_top: None,
            })
            .collect()
    }

    #[test]
    fn switches_only_at_a_keyframe_of_the_target() {
        let mut s = LayerSelector::default();
        assert_eq!(s.on_packet(2, true), Verdict::Drop, "no target yet");
        s.set_target(Some(2));
        assert_eq!(
            s.on_packet(2, false),
            Verdict::Drop,
            "delta before the keyframe"
        );
        assert_eq!(
            s.on_packet(0, true),
            Verdict::Drop,
            "keyframe of another layer"
        );
        assert_eq!(s.on_packet(2, true), Verdict::Forward { switched: true });
        assert_eq!(s.on_packet(2, false), Verdict::Forward { switched: false });
        // Down: the current layer flows until the lower layer's keyframe.
        assert!(s.set_target(Some(0)));
        assert_eq!(s.waiting_for(), Some(0));
        assert_eq!(s.on_packet(0, false), Verdict::Drop);
        assert_eq!(s.on_packet(2, false), Verdict::Forward { switched: false });
        assert_eq!(s.on_packet(0, true), Verdict::Forward { switched: true });
        assert_eq!(s.on_packet(2, true), Verdict::Drop);
        assert_eq!(s.current(), Some(0));
        assert_eq!(s.waiting_for(), None);
        s.reset();
        assert_eq!(s.on_packet(0, false), Verdict::Drop);
        assert_eq!(s.on_packet(0, true), Verdict::Forward { switched: true });
    }

    #[test]
    fn chooses_by_size_then_budget() {
        let l = layers([150_000, 500_000, 1_500_000]);
        assert_eq!(choose(&l, Want::Top, None), Some(2));
        assert_eq!(choose(&l, Want::Layer(1), None), Some(1));
        assert_eq!(choose(&l, Want::Layer(9), None), Some(2));
        // Assumed 320x180, 640x360, 1280x720.
        let small = Want::Size {
            width: 300,
            height: 170,
        };
        assert_eq!(choose(&l, small, None), Some(0));
        let mid = Want::Size {
            width: 400,
            height: 300,
        };
        assert_eq!(choose(&l, mid, None), Some(1));
        let huge = Want::Size {
            width: 4000,
            height: 3000,
        };
        assert_eq!(choose(&l, huge, None), Some(2));
        assert_eq!(choose(&l, Want::Top, Some(600_000)), Some(1));
        assert_eq!(
            choose(&l, Want::Top, Some(10_000)),
            Some(0),
            "the lowest when none fits"
        );
        assert_eq!(choose(&l, small, Some(10_000_000)), Some(0));
    }

    #[test]
    fn known_sizes_and_stopped_layers() {
        let mut l = layers([100, 200, 300]);
        l[2].size = Some((960, 540));
        let want = Want::Size {
            width: 480,
            height: 270,
        };
        assert_eq!(choose(&l, want, None), Some(1), "960/2 covers 480");
        l[1].active = false;
        assert_eq!(
            choose(&l, want, None),
            Some(2),
            "a stopped layer is skipped"
        );
        assert_eq!(choose(&l, Want::Layer(1), None), Some(0));
        l[2].active = false;
        assert_eq!(
            choose(&l, Want::Top, None),
            Some(0),
            "top stopped: the one left"
        );
        l[0].active = false;
        assert_eq!(choose(&l, Want::Top, None), None);
    }

    /// An H264 publisher (no sizes read) whose top layer `f` never started: `q` and `h` are
    /// still a quarter and a half of a 1280×720 top, so a 480×272 tile needs `h`; counted
    /// within the list instead, `h` would pass for the top and `q` for 640×360.
    #[test]
    fn sizes_are_assumed_from_the_declared_layers() {
        let mut l = layers([100, 200, 300]);
        l.truncate(2);
        let tile = Want::Size {
            width: 480,
            height: 272,
        };
        assert_eq!(choose(&l, tile, None), Some(0), "undeclared: h is the top");
        l[0].below_top = Some(2);
        l[1].below_top = Some(1);
        assert_eq!(choose(&l, tile, None), Some(1), "f declared above h");
        // A known size is scaled by the declared steps between the layers.
        l[0].size = Some((320, 180));
        assert_eq!(size_of(&l, 1), (640, 360));
        l[0].size = None;
        l[1].size = Some((640, 360));
        assert_eq!(size_of(&l, 0), (320, 180));
    }
}
