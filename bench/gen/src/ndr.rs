//! The throughput search of RFC 2544 section 26.1 as FD.io CSIT reports it: the highest rate
//! with no loss (NDR) and the highest with at most 0.5% loss (PDR), each found by binary
//! search between a floor and a ceiling to a relative resolution. The trials are the
//! caller's (a function from offered rate to loss ratio), so the search runs the same over a
//! relay, a model, or the synthetic curve of the tests.

/// The loss ratio a PDR trial may have.
pub const PDR_LOSS: f64 = 0.005;

/// Where and how finely to search.
#[derive(Clone, Copy, Debug)]
pub struct SearchConfig {
    /// The lowest rate tried, packets per second.
    pub min_pps: f64,
    /// The highest rate tried (line rate, or the generator's own limit).
    pub max_pps: f64,
    /// Stop when the bracket is narrower than this fraction of its upper end.
    pub resolution: f64,
    /// Trials per search at most (each rate is a timed trial).
    pub max_trials: usize,
}

/// One trial: the rate offered and the loss measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trial {
    /// Packets per second offered.
    pub rate_pps: f64,
    /// Lost over offered (0 to 1).
    pub loss_ratio: f64,
}

/// The two rates and every trial that found them, in order (the search trace the report
/// plots).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// Highest rate with no loss found (0 if even the floor lost packets).
    pub ndr_pps: f64,
    /// Highest rate with at most [`PDR_LOSS`] found.
    pub pdr_pps: f64,
    /// The trials, NDR search first.
    pub trace: Vec<Trial>,
}

/// Searches NDR then PDR (from NDR up: PDR is never below it).
pub fn search(cfg: &SearchConfig, mut trial: impl FnMut(f64) -> f64) -> SearchResult {
    let mut trace = Vec::new();
    let mut run = |rate: f64, trace: &mut Vec<Trial>| {
        let loss_ratio = trial(rate);
        trace.push(Trial {
            rate_pps: rate,
            loss_ratio,
        });
        loss_ratio
    };
    let ndr = bisect(cfg, 0.0, cfg.min_pps, &mut trace, &mut run);
    let floor = if ndr > 0.0 { ndr } else { cfg.min_pps };
    let pdr = bisect(cfg, PDR_LOSS, floor, &mut trace, &mut run);
    SearchResult {
        ndr_pps: ndr,
        pdr_pps: pdr.max(ndr),
        trace,
    }
}

/// The highest rate in [`floor`, `cfg.max_pps`] whose loss is at most `threshold`, to the
/// resolution; 0 if the floor itself loses more.
fn bisect(
    cfg: &SearchConfig,
    threshold: f64,
    floor: f64,
    trace: &mut Vec<Trial>,
    run: &mut impl FnMut(f64, &mut Vec<Trial>) -> f64,
) -> f64 {
    let mut trials = 0;
    let mut passes = |rate: f64, trace: &mut Vec<Trial>, trials: &mut usize| {
        *trials += 1;
        run(rate, trace) <= threshold
    };
    if passes(cfg.max_pps, trace, &mut trials) {
        return cfg.max_pps;
    }
    // The floor, unless an earlier search already showed it passes (a trial known to pass).
    let known = trace
        .iter()
        .any(|t| t.rate_pps == floor && t.loss_ratio <= threshold);
    if !known && !passes(floor, trace, &mut trials) {
        return 0.0;
    }
    let (mut lo, mut hi) = (floor, cfg.max_pps);
    while hi - lo > cfg.resolution * hi && trials < cfg.max_trials {
        let mid = (lo + hi) / 2.0;
        if passes(mid, trace, &mut trials) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A relay that forwards up to `capacity` packets per second and drops the rest.
    fn capped(capacity: f64) -> impl FnMut(f64) -> f64 {
        move |rate| ((rate - capacity) / rate).max(0.0)
    }

    fn cfg() -> SearchConfig {
        SearchConfig {
            min_pps: 10_000.0,
            max_pps: 14_880_952.0,
            resolution: 0.005,
            max_trials: 40,
        }
    }

    proptest! {
        /// On a known loss curve both rates converge to within the resolution below the
        /// true ones, in a bounded number of trials.
        #[test]
        fn the_search_converges_on_a_known_loss_curve(capacity in 20_000.0f64..14_000_000.0) {
            let r = search(&cfg(), capped(capacity));
            let true_pdr = capacity / (1.0 - PDR_LOSS);
            prop_assert!(r.ndr_pps <= capacity && r.ndr_pps >= capacity * (1.0 - 2.0 * cfg().resolution),
                "NDR {} for capacity {}", r.ndr_pps, capacity);
            prop_assert!(r.pdr_pps <= true_pdr && r.pdr_pps >= true_pdr * (1.0 - 2.0 * cfg().resolution),
                "PDR {} for {}", r.pdr_pps, true_pdr);
            prop_assert!(r.trace.len() <= 2 * cfg().max_trials);
            // Every trial the search stopped below passed, and it is in the trace.
            prop_assert!(r.trace.iter().any(|t| t.rate_pps == r.ndr_pps && t.loss_ratio == 0.0));
        }
    }

    #[test]
    fn a_relay_faster_than_the_ceiling_is_reported_at_the_ceiling() {
        let r = search(&cfg(), capped(1e9));
        assert_eq!(r.ndr_pps, cfg().max_pps);
        assert_eq!(r.pdr_pps, cfg().max_pps);
        assert_eq!(r.trace.len(), 2);
    }

    #[test]
    fn a_relay_that_loses_at_the_floor_has_no_ndr() {
        let r = search(&cfg(), |_| 0.01);
        assert_eq!(r.ndr_pps, 0.0);
        // 1% loss everywhere: no PDR either.
        assert_eq!(r.pdr_pps, 0.0);
    }
}
