//! Profile tools: create or replace a profile, read one.
//!
//! Owns their inputs, handlers and registration; profiles are stored by
//! `asbr::profiles`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    registry::{CallCtx, Hints, ToolDef},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::profiles::{A11y, Profile, Skill};

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "upsert_profile",
            write.destructive().idempotent(),
            upsert_profile,
            "Create or replace a user profile: skill level, preferred tools, accessibility needs.",
        )
        .titled("Save profile"),
        t.tool(
            "get_profile",
            read,
            get_profile,
            "Get one profile by id: skill level, preferred tools and accessibility needs.",
        )
        .titled("Get profile"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertProfileIn {
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    pub skill: Skill,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub tools: Vec<String>,
    #[serde(default)]
    pub a11y: A11y,
}

#[derive(Serialize, JsonSchema)]
pub struct UpsertProfileOut {
    pub profile: Profile,
    pub created: bool,
}

pub(super) async fn upsert_profile(
    a: A,
    i: UpsertProfileIn,
    _ctx: CallCtx,
) -> Out<UpsertProfileOut> {
    let profile = Profile {
        id: i.id,
        skill: i.skill,
        tools: i.tools,
        a11y: i.a11y,
        updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let (profile, created) = a.profiles.upsert(profile).await?;
    Ok(UpsertProfileOut { profile, created })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIdIn {
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
}

pub(super) async fn get_profile(a: A, i: ProfileIdIn, _ctx: CallCtx) -> Out<Profile> {
    Ok(a.profiles.get(&i.id).await?)
}
