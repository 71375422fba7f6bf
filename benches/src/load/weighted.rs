//! Weighted choices for load runs: message sizes (`4096:80,102400:20`) and recipient
//! domains (`gmail.test:60,yahoo.test:40`). An item without `:weight` weighs 1.
//!
//! Invariant: a [`Weighted`] holds at least one item and a positive total weight, so
//! [`Weighted::pick`] always returns an item.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Why a weighted list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeightedError {
    /// No items at all.
    #[error("empty list")]
    Empty,
    /// An item that does not parse (the item text is given).
    #[error("invalid item {0:?}")]
    Item(String),
    /// A weight that is not a non-negative integer (the weight text is given).
    #[error("invalid weight {0:?}")]
    Weight(String),
    /// All weights are zero.
    #[error("all weights are zero")]
    ZeroTotal,
}

/// Items with integer weights, picked at random in proportion to their weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted<T> {
    items: Vec<T>,
    weights: Vec<u64>,
    /// Running totals of `weights`, for a binary search.
    cumulative: Vec<u64>,
}

impl<T> Weighted<T> {
    /// Items with weights; refuses an empty list or a zero total.
    pub fn new(pairs: impl IntoIterator<Item = (T, u64)>) -> Result<Weighted<T>, WeightedError> {
        let (items, weights): (Vec<T>, Vec<u64>) = pairs.into_iter().unzip();
        if items.is_empty() {
            return Err(WeightedError::Empty);
        }
        let cumulative: Vec<u64> = weights
            .iter()
            .scan(0u64, |total, w| {
                *total = total.saturating_add(*w);
                Some(*total)
            })
            .collect();
        if cumulative.last() == Some(&0) {
            return Err(WeightedError::ZeroTotal);
        }
        Ok(Weighted {
            items,
            weights,
            cumulative,
        })
    }

    /// One item, weight 1.
    pub fn single(item: T) -> Weighted<T> {
        Weighted {
            items: vec![item],
            weights: vec![1],
            cumulative: vec![1],
        }
    }

    /// The items, in the order given.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Picks the index of an item, in proportion to its weight.
    pub fn pick_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let total = *self.cumulative.last().expect("never empty");
        let x = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }

    /// Picks an item, in proportion to its weight.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &T {
        &self.items[self.pick_index(rng)]
    }
}

impl<T: FromStr> FromStr for Weighted<T> {
    type Err = WeightedError;

    /// Parses `item[:weight],item[:weight],...`; spaces around parts are ignored.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut pairs = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (item, weight) = match part.rsplit_once(':') {
                Some((item, weight)) => {
                    let weight = weight
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| WeightedError::Weight(weight.to_owned()))?;
                    (item.trim(), weight)
                }
                None => (part, 1),
            };
            let item = item
                .parse::<T>()
                .map_err(|_| WeightedError::Item(item.to_owned()))?;
            pairs.push((item, weight));
        }
        Weighted::new(pairs)
    }
}

impl<T: fmt::Display> fmt::Display for Weighted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (item, weight)) in self.items.iter().zip(&self.weights).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{item}:{weight}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn specs_parse_exactly() {
        let sizes: Weighted<usize> = "4096:80, 102400:20".parse().unwrap();
        assert_eq!(sizes.items(), [4096, 102_400]);
        assert_eq!(sizes.to_string(), "4096:80,102400:20");
        let one: Weighted<usize> = "2048".parse().unwrap();
        assert_eq!(one.to_string(), "2048:1");
        let domains: Weighted<String> = "gmail.test:60,yahoo.test:40".parse().unwrap();
        assert_eq!(domains.items(), ["gmail.test", "yahoo.test"]);
        let table: &[(&str, WeightedError)] = &[
            ("", WeightedError::Empty),
            (" , ", WeightedError::Empty),
            ("x:1", WeightedError::Item("x".into())),
            ("10:y", WeightedError::Weight("y".into())),
            ("10:-1", WeightedError::Weight("-1".into())),
            ("10:0,20:0", WeightedError::ZeroTotal),
        ];
        for (spec, expected) in table {
            assert_eq!(
                spec.parse::<Weighted<usize>>().unwrap_err(),
                *expected,
                "{spec:?}"
            );
        }
    }

    #[test]
    fn picks_follow_the_weights() {
        let w: Weighted<&str> = Weighted::new([("a", 80), ("b", 0), ("c", 20)]).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[w.pick_index(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((7_600..8_400).contains(&counts[0]), "{counts:?}");
        assert_eq!(counts[0] + counts[2], 10_000);
    }
}
