//! Configuration: parsing with unknown keys refused, and the validation table.

use super::*;

const GOOD: &str = r#"
[[source]]
name = "ip-a"
address = "127.0.0.10"
ehlo = "a.mta.example.net"
weight = 100
warmup = "standard"
warmup_start = "2026-11-20"

[[source]]
name = "ip-b"
address = "2001:db8::11"
ehlo = "b.mta.example.net"

[[pool]]
name = "default"
sources = ["ip-a", "ip-b"]

[[pool]]
name = "bulk"
sources = ["ip-b"]
overflow = "spill"

[[tenant]]
name = "acme"
pool = "bulk"

[warmup.standard]
daily = [50, 100, 500, 1000, 5000, 10000, 20000, 40000, 70000, 100000, 150000, 250000, 400000, 600000, 1000000]
burst_minutes = 10

[warmup.standard.provider.gmail]
daily = [20, 40, 80]

[[classify]]
code = 421
enhanced = "4.7.28"
text = "(?i)unusual rate"
provider = "gmail"
class = "rate_limited"

[reputation]
decrease = 0.6
suspend_initial = "30m"
min_rate = "1/min"

[suppression]
ttl = "14days"
"#;

#[test]
fn the_documented_example_parses_and_validates() {
    let config = IpwarmConfig::from_toml(GOOD).unwrap();
    config.validate().unwrap();
    assert_eq!(config.sources.len(), 2);
    assert_eq!(config.sources[1].weight, 100, "default weight");
    assert_eq!(config.sources[1].warmup, None);
    assert_eq!(config.pools[0].overflow, Overflow::Wait, "default overflow");
    assert_eq!(config.pools[1].overflow, Overflow::Spill);
    let plan = &config.warmup["standard"];
    assert_eq!(plan.daily.len(), 15);
    assert_eq!(plan.provider["gmail"].daily, [20, 40, 80]);
    assert_eq!(plan.burst_minutes, 10);
    assert_eq!(config.reputation.decrease, 0.6);
    assert_eq!(config.reputation.suspend_initial, Duration::from_secs(1800));
    assert_eq!(
        config.reputation.increase_every, 20,
        "unset keys keep defaults"
    );
    assert_eq!(config.reputation.min_rate.to_string(), "1/min");
    assert_eq!(config.suppression.ttl, Duration::from_secs(14 * 86_400));
    assert!(config.classify_builtin);
    // An empty configuration is valid: the built-in default source and pool.
    IpwarmConfig::from_toml("").unwrap().validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_types_are_refused_when_parsing() {
    let table = [
        (
            "[[source]]\nname = \"a\"\naddress = \"127.0.0.1\"\nehlo = \"a.b.c\"\ncolour = 1",
            "colour",
        ),
        (
            "[[pool]]\nname = \"default\"\nsources = []\noverflow = \"drop\"",
            "drop",
        ),
        ("[warmup.x]\ndaily = [1]\nweekly = [7]", "weekly"),
        ("[reputation]\nhalve = true", "halve"),
        ("[reputation]\nmin_rate = \"10/week\"", "invalid rate"),
        (
            "[reputation]\nsuspend_initial = \"an hour\"",
            "suspend_initial",
        ),
        ("[suppression]\nttl = 30", "ttl"),
        (
            "[[source]]\nname = \"a\"\naddress = \"not-an-ip\"\nehlo = \"a.b.c\"",
            "address",
        ),
        ("[[tenants]]\nname = \"a\"\npool = \"b\"", "tenants"),
    ];
    for (text, mention) in table {
        let error = IpwarmConfig::from_toml(text).unwrap_err().to_string();
        assert!(error.contains(mention), "{text}: {error}");
    }
}

#[test]
fn validation_names_the_bad_key() {
    type Edit = fn(&mut IpwarmConfig);
    let table: &[(Edit, Option<&str>)] = &[
        (|_| {}, None),
        (
            |c| c.sources[1].name = "ip a".into(),
            Some("source[1].name"),
        ),
        (
            |c| c.sources[1].name = String::new(),
            Some("source[1].name"),
        ),
        (
            |c| c.sources[1].name = "ip-a".into(),
            Some("source[1].name"),
        ),
        (
            |c| c.sources[1].address = "127.0.0.10".parse().unwrap(),
            Some("source[1].address"),
        ),
        (
            |c| c.sources[1].address = "0.0.0.0".parse().unwrap(),
            Some("source[1].address"),
        ),
        (
            |c| c.sources[1].ehlo = "localhost".into(),
            Some("source[1].ehlo"),
        ),
        (
            |c| c.sources[1].ehlo = "bad_name.example".into(),
            Some("source[1].ehlo"),
        ),
        (|c| c.sources[1].ehlo = "b.mta.example.net.".into(), None),
        (|c| c.sources[0].weight = 0, Some("source[0].weight")),
        (|c| c.sources[0].weight = 10_001, Some("source[0].weight")),
        (
            |c| c.sources[1].warmup = Some("fast".into()),
            Some("source[1].warmup"),
        ),
        (
            |c| c.sources[1].warmup_start = Some("2026-11-20".into()),
            Some("source[1].warmup_start"),
        ),
        (
            |c| c.sources[0].warmup_start = Some("2026-02-30".into()),
            Some("source[0].warmup_start"),
        ),
        (|c| c.sources[0].warmup_start = None, None),
        (|c| c.pools[1].name = "default".into(), Some("pool[1].name")),
        (|c| c.pools[1].sources.clear(), Some("pool[1].sources")),
        (
            |c| c.pools[1].sources.push("ip-z".into()),
            Some("pool[1].sources[1]"),
        ),
        (
            |c| c.pools[0].sources.push("ip-a".into()),
            Some("pool[0].sources[2]"),
        ),
        (|c| c.pools[0].name = "main".into(), Some("pool")),
        (|c| c.pools.clear(), Some("pool")),
        (|c| c.tenants[0].pool = "vip".into(), Some("tenant[0].pool")),
        (
            |c| c.tenants.push(c.tenants[0].clone()),
            Some("tenant[1].name"),
        ),
        (
            |c| c.tenants[0].name = String::new(),
            Some("tenant[0].name"),
        ),
        (
            |c| c.warmup.get_mut("standard").unwrap().daily.clear(),
            Some("warmup.standard.daily"),
        ),
        (
            |c| c.warmup.get_mut("standard").unwrap().daily[0] = 0,
            Some("warmup.standard.daily[0]"),
        ),
        (
            |c| c.warmup.get_mut("standard").unwrap().daily[3] = 10,
            Some("warmup.standard.daily[3]"),
        ),
        (
            |c| {
                let plan = c.warmup.get_mut("standard").unwrap();
                plan.provider.get_mut("gmail").unwrap().daily = vec![40, 20];
            },
            Some("warmup.standard.provider.gmail.daily[1]"),
        ),
        (
            |c| c.warmup.get_mut("standard").unwrap().burst_minutes = 0,
            Some("warmup.standard.burst_minutes"),
        ),
        (
            |c| c.classify[0].text = Some("(".into()),
            Some("classify[0].text"),
        ),
        (
            |c| c.classify[0].enhanced = Some("5.7.1".into()),
            Some("classify[0].enhanced"),
        ),
        (|c| c.reputation.decrease = 1.0, Some("reputation.decrease")),
        (|c| c.reputation.increase = 0.0, Some("reputation.increase")),
        (
            |c| c.reputation.increase_every = 0,
            Some("reputation.increase_every"),
        ),
        (
            |c| c.reputation.recovery_increase = 0.01,
            Some("reputation.recovery_increase"),
        ),
        (
            |c| c.reputation.suspend_max = Duration::from_secs(60),
            Some("reputation.suspend_max"),
        ),
        (
            |c| c.reputation.bounce_suspend = 0.01,
            Some("reputation.bounce_suspend"),
        ),
        (
            |c| c.reputation.bounce_throttle = 0.0,
            Some("reputation.bounce_throttle"),
        ),
        (
            |c| c.reputation.resume_share = 0.0,
            Some("reputation.resume_share"),
        ),
        (
            |c| c.reputation.max_providers = 0,
            Some("reputation.max_providers"),
        ),
        (
            |c| c.suppression.ttl = Duration::from_secs(1),
            Some("suppression.ttl"),
        ),
        (
            |c| c.suppression.max_entries = 0,
            Some("suppression.max_entries"),
        ),
    ];
    let good = IpwarmConfig::from_toml(GOOD).unwrap();
    for (i, (edit, key)) in table.iter().enumerate() {
        let mut config = good.clone();
        edit(&mut config);
        let error = config.validate().err();
        assert_eq!(
            error.as_ref().and_then(|e| e.key()),
            *key,
            "case {i}: {error:?}"
        );
        if let Some(error) = error {
            // The message names the key too.
            assert!(error.to_string().contains(key.unwrap()), "{error}");
        }
    }
}

#[test]
fn rates_parse_as_written() {
    let table = [
        ("600/min", Some((600, 60))),
        ("10/s", Some((10, 1))),
        ("36000/h", Some((36_000, 3600))),
        ("100/day", Some((100, 86_400))),
        ("0/min", None),
        ("600", None),
        ("600/week", None),
        ("x/min", None),
    ];
    for (text, expected) in table {
        let got = text
            .parse::<Rate>()
            .ok()
            .map(|r| (r.count, r.per.as_secs()));
        assert_eq!(got, expected, "{text}");
    }
    let rate: Rate = "600/min".parse().unwrap();
    assert_eq!(rate.to_string(), "600/min");
    assert_eq!(rate.per_second(), 10.0);
}
