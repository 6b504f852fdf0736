//! Where a cluster's committed offsets come from (`committed_offsets` in a
//! cluster profile): the admin API, or the `__consumer_offsets` reader.
//! Its own module because the configuration names it and the source
//! branches on it.

/// How the collector learns the committed offsets of a cluster's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommittedOffsetsFrom {
    /// One OffsetFetch request per group and cycle, through the admin API.
    /// Needs only DESCRIBE on the groups.
    #[default]
    AdminApi,
    /// Read from `__consumer_offsets` by a background reader (see
    /// [`offsets_topic`](super::offsets_topic)): no per-group requests, the brokers only serve one
    /// fetch stream. Needs READ on `__consumer_offsets`; the admin API
    /// answers while the reader catches up or when it fails.
    OffsetsTopic,
}

impl<'de> serde::Deserialize<'de> for CommittedOffsetsFrom {
    /// Like the derived form, but a wrong value names the right ones.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.as_str() {
            "admin_api" => Ok(CommittedOffsetsFrom::AdminApi),
            "offsets_topic" => Ok(CommittedOffsetsFrom::OffsetsTopic),
            other => Err(serde::de::Error::custom(format!(
                "unknown committed_offsets source `{other}`: expected `admin_api` or `offsets_topic`"
            ))),
        }
    }
}
