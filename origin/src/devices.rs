//! "Your devices": what a session is stored with so that its person can tell it from their
//! others, and nothing more (GDPR's data minimisation). The user agent becomes browser, OS and
//! kind of device (woothee's parser), the client's address its network (IPv4 /24 and IPv6 /48
//! by default), and Cloudflare's place for the request its country, region and city. Each field
//! can be turned off; none is ever used for a security decision, since the client can make any
//! of it up. It is deleted with its session.

use std::net::IpAddr;

use latch_shared::api::{DeviceReport, MAX_USER_AGENT_LEN};

/// What the deployment stores of a new session's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Browser, OS and kind of device, parsed from the `User-Agent` (the header itself is not
    /// stored).
    pub user_agent: bool,
    /// How many leading bits of an IPv4 address are kept, 0 (none stored) to 32.
    pub ipv4_prefix: u8,
    /// How many leading bits of an IPv6 address are kept, 0 (none stored) to 128.
    pub ipv6_prefix: u8,
    /// Country, region and city.
    pub place: bool,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        DevicePolicy { user_agent: true, ipv4_prefix: 24, ipv6_prefix: 48, place: true }
    }
}

/// A session's device as stored: each field `None` where the policy keeps none or the client
/// said nothing recognisable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<String>,
    pub os: Option<String>,
    pub kind: Option<String>,
    pub network: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

/// The longest place name kept (in characters).
const MAX_PLACE_LEN: usize = 80;

impl DevicePolicy {
    /// What to store of `report` and the client's `address`.
    pub fn describe(&self, report: Option<&DeviceReport>, address: Option<IpAddr>) -> Device {
        let report = report.cloned().unwrap_or_default();
        let mut device = Device {
            network: address.and_then(|address| self.network(address)),
            ..Device::default()
        };
        if self.user_agent {
            if let Some(parsed) = report.user_agent.as_deref().and_then(parse_user_agent) {
                (device.browser, device.os, device.kind) = parsed;
            }
        }
        if self.place {
            device.country = report.country.as_deref().and_then(country_code);
            device.region = report.region.as_deref().and_then(place_name);
            device.city = report.city.as_deref().and_then(place_name);
        }
        device
    }

    /// The address truncated to the policy's prefix, as `network/prefix`; `None` for a prefix
    /// of 0.
    pub fn network(&self, address: IpAddr) -> Option<String> {
        let address = match address {
            // An IPv4 client reaching an IPv6 listener is still an IPv4 client.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        let (bits, network) = match address {
            IpAddr::V4(v4) => {
                let bits = self.ipv4_prefix.min(32);
                (bits, IpAddr::V4((keep_leading(u32::from(v4).into(), 32, bits) as u32).into()))
            }
            IpAddr::V6(v6) => {
                let bits = self.ipv6_prefix.min(128);
                (bits, IpAddr::V6(keep_leading(u128::from(v6), 128, bits).into()))
            }
        };
        (bits > 0).then(|| format!("{network}/{bits}"))
    }
}

/// The leading `bits` of an address `width` bits wide, the rest zero.
fn keep_leading(address: u128, width: u32, bits: u8) -> u128 {
    let dropped = width - u32::from(bits);
    let mask = u128::MAX.checked_shl(dropped).unwrap_or(0);
    address & mask
}

/// Browser (with its major version), OS and kind of device, where the parser recognises them.
fn parse_user_agent(user_agent: &str) -> Option<(Option<String>, Option<String>, Option<String>)> {
    if user_agent.len() > MAX_USER_AGENT_LEN {
        return None;
    }
    let parsed = woothee::parser::Parser::new().parse(user_agent)?;
    let known = |text: &str| {
        (!text.is_empty() && text != woothee::woothee::VALUE_UNKNOWN).then(|| text.to_owned())
    };
    let browser = known(parsed.name).map(|name| match known(parsed.version) {
        Some(version) => {
            let major = version.split('.').next().unwrap_or_default();
            if major.chars().all(|c| c.is_ascii_digit()) && !major.is_empty() {
                format!("{name} {major}")
            } else {
                name
            }
        }
        None => name,
    });
    Some((browser, known(parsed.os), known(parsed.category)))
}

/// Two ASCII letters, upper-cased; Cloudflare's `T1` (Tor) and `XX` (unknown) are no country.
fn country_code(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    let letters = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
    (letters && code != "XX").then_some(code)
}

/// A place name as given (`Zürich`, `Île-de-France`), without control characters, bounded.
fn place_name(name: &str) -> Option<String> {
    let name = name.trim();
    let clean = !name.is_empty() && !name.chars().any(char::is_control);
    (clean).then(|| name.chars().take(MAX_PLACE_LEN).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    fn report(user_agent: &str) -> DeviceReport {
        DeviceReport {
            user_agent: Some(user_agent.into()),
            country: Some("ch".into()),
            region: Some("Zürich".into()),
            city: Some("Zürich".into()),
        }
    }

    #[test]
    fn a_user_agent_becomes_browser_os_and_kind_and_is_not_kept() {
        let policy = DevicePolicy::default();
        let device = policy.describe(Some(&report(CHROME_WINDOWS)), None);
        assert_eq!(device.browser.as_deref(), Some("Chrome 131"));
        assert_eq!(device.os.as_deref(), Some("Windows 10"));
        assert_eq!(device.kind.as_deref(), Some("pc"));
        let phone = policy.describe(Some(&report(SAFARI_IPHONE)), None);
        assert_eq!(phone.browser.as_deref(), Some("Safari 17"));
        assert_eq!(phone.os.as_deref(), Some("iPhone"));
        assert_eq!(phone.kind.as_deref(), Some("smartphone"));
        assert_eq!(device.country.as_deref(), Some("CH"));
        assert_eq!(device.city.as_deref(), Some("Zürich"));
    }

    #[test]
    fn an_unknown_or_absurd_user_agent_stores_nothing() {
        let policy = DevicePolicy::default();
        for agent in ["", "\u{1}", &"Mozilla/5.0 ".repeat(200)] {
            let device = policy.describe(Some(&report(agent)), None);
            assert_eq!((device.browser, device.os, device.kind), (None, None, None), "{agent:?}");
        }
    }

    #[test]
    fn addresses_are_kept_only_as_their_network() {
        let policy = DevicePolicy::default();
        let v4 = "203.0.113.77".parse().unwrap();
        assert_eq!(policy.network(v4).as_deref(), Some("203.0.113.0/24"));
        let v6 = "2001:db8:abcd:12:1:2:3:4".parse().unwrap();
        assert_eq!(policy.network(v6).as_deref(), Some("2001:db8:abcd::/48"));
        let mapped = "::ffff:198.51.100.9".parse().unwrap();
        assert_eq!(policy.network(mapped).as_deref(), Some("198.51.100.0/24"));
        let coarse = DevicePolicy { ipv4_prefix: 16, ipv6_prefix: 32, ..policy };
        assert_eq!(coarse.network(v4).as_deref(), Some("203.0.0.0/16"));
        assert_eq!(coarse.network(v6).as_deref(), Some("2001:db8::/32"));
        let whole = DevicePolicy { ipv4_prefix: 32, ipv6_prefix: 128, ..policy };
        assert_eq!(whole.network(v4).as_deref(), Some("203.0.113.77/32"));
    }

    #[test]
    fn each_field_can_be_turned_off() {
        let off = DevicePolicy { user_agent: false, ipv4_prefix: 0, ipv6_prefix: 0, place: false };
        let address = Some("203.0.113.77".parse().unwrap());
        assert_eq!(off.describe(Some(&report(CHROME_WINDOWS)), address), Device::default());
        let v6 = Some("2001:db8::1".parse().unwrap());
        assert_eq!(off.describe(None, v6), Device::default());
        let no_place = DevicePolicy { place: false, ..DevicePolicy::default() };
        let device = no_place.describe(Some(&report(CHROME_WINDOWS)), address);
        assert_eq!((device.country, device.region, device.city), (None, None, None));
        assert_eq!(device.network.as_deref(), Some("203.0.113.0/24"));
    }

    #[test]
    fn places_are_checked_before_they_are_kept() {
        let policy = DevicePolicy::default();
        let odd = DeviceReport {
            user_agent: None,
            country: Some("XX".into()),
            region: Some("line\nbreak".into()),
            city: Some("é".repeat(500)),
        };
        let device = policy.describe(Some(&odd), None);
        assert_eq!(device.country, None, "XX is Cloudflare's unknown");
        assert_eq!(device.region, None);
        assert_eq!(device.city.map(|city| city.chars().count()), Some(MAX_PLACE_LEN));
        let tor = DeviceReport { country: Some("T1".into()), ..odd };
        assert_eq!(policy.describe(Some(&tor), None).country, None);
    }

    proptest! {
        #[test]
        fn any_report_is_described_without_panicking_and_within_bounds(
            user_agent in proptest::option::of(".{0,300}"),
            country in proptest::option::of(".{0,4}"),
            city in proptest::option::of(".{0,200}"),
            v4 in any::<u32>(),
            bits in 0u8..=200,
        ) {
            let policy = DevicePolicy { ipv4_prefix: bits, ipv6_prefix: bits, ..DevicePolicy::default() };
            let report = DeviceReport { user_agent, country, region: None, city };
            let device = policy.describe(Some(&report), Some(std::net::Ipv4Addr::from(v4).into()));
            prop_assert!(device.city.is_none_or(|city| city.chars().count() <= MAX_PLACE_LEN));
            prop_assert!(device.country.is_none_or(|code| code.len() == 2));
            prop_assert_eq!(device.network.is_some(), bits > 0);
        }
    }
}
