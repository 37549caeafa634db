//! What a wait waits for, defined once: named conditions on a resource as the cloud reports
//! it (`None`: the cloud no longer has it), composable with [`Condition::and`],
//! [`Condition::or`] and [`Condition::not`]. Every backend's `wait_volume_*` is one of these
//! handed to the wait engine, so OpenStack, EVS and the fake agree on what "ready",
//! "extended", "retyped" and "deleted" mean.

use super::error::CloudError;
use super::types::{Volume, VolumeStatus};
use super::wait::Check;

/// A condition on a resource, or on its absence (`None`).
pub trait Condition<T>: Send + Sync {
    /// True when `item` (the cloud's current view, `None` when gone) satisfies the condition.
    fn matches(&self, item: Option<&T>) -> bool;

    /// Both conditions hold.
    fn and<B: Condition<T>>(self, other: B) -> And<Self, B>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// Either condition holds.
    fn or<B: Condition<T>>(self, other: B) -> Or<Self, B>
    where
        Self: Sized,
    {
        Or(self, other)
    }

    /// The condition does not hold.
    fn not(self) -> Not<Self>
    where
        Self: Sized,
    {
        Not(self)
    }

    /// The condition as a test of a resource that exists, the form the wait engine's
    /// `accept` takes.
    fn on_present(self) -> impl Fn(&T) -> bool + Send + Sync
    where
        Self: Sized,
    {
        move |item| self.matches(Some(item))
    }
}

impl<T, F: Fn(Option<&T>) -> bool + Send + Sync> Condition<T> for F {
    fn matches(&self, item: Option<&T>) -> bool {
        self(item)
    }
}

/// [`Condition::and`].
#[derive(Clone, Copy, Debug)]
pub struct And<A, B>(A, B);

impl<T, A: Condition<T>, B: Condition<T>> Condition<T> for And<A, B> {
    fn matches(&self, item: Option<&T>) -> bool {
        self.0.matches(item) && self.1.matches(item)
    }
}

/// [`Condition::or`].
#[derive(Clone, Copy, Debug)]
pub struct Or<A, B>(A, B);

impl<T, A: Condition<T>, B: Condition<T>> Condition<T> for Or<A, B> {
    fn matches(&self, item: Option<&T>) -> bool {
        self.0.matches(item) || self.1.matches(item)
    }
}

/// [`Condition::not`].
#[derive(Clone, Copy, Debug)]
pub struct Not<A>(A);

impl<T, A: Condition<T>> Condition<T> for Not<A> {
    fn matches(&self, item: Option<&T>) -> bool {
        !self.0.matches(item)
    }
}

/// The volume is usable: `available` or `in-use`, no transition under way.
pub fn is_ready() -> impl Condition<Volume> + Clone {
    |v: Option<&Volume>| v.is_some_and(|v| matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse))
}

/// The volume is at least `size_gib` GiB.
pub fn has_size(size_gib: u64) -> impl Condition<Volume> + Clone {
    move |v: Option<&Volume>| v.is_some_and(|v| v.size_gib >= size_gib)
}

/// The volume has type `volume_type`.
pub fn has_type(volume_type: &str) -> impl Condition<Volume> + Clone {
    let volume_type = volume_type.to_string();
    move |v: Option<&Volume>| v.is_some_and(|v| v.volume_type.as_deref() == Some(volume_type.as_str()))
}

/// The volume is in the `error*` state `status` (e.g. `error_deleting`).
pub fn has_error(status: &'static str) -> impl Condition<Volume> + Clone {
    move |v: Option<&Volume>| v.is_some_and(|v| matches!(&v.status, VolumeStatus::Error(s) if s == status))
}

/// The cloud no longer has the resource.
pub fn is_gone<T>() -> impl Condition<T> + Clone {
    |item: Option<&T>| item.is_none()
}

/// The wait engine's verdict on a volume: done when `done` holds, failed with the volume's
/// error state when `failed` holds, waiting otherwise.
pub fn verdict(
    id: &str,
    item: Option<&Volume>,
    done: &impl Condition<Volume>,
    failed: &impl Condition<Volume>,
) -> Check {
    if done.matches(item) {
        return Check::Done;
    }
    match item {
        Some(Volume { status: VolumeStatus::Error(status), .. }) if failed.matches(item) => {
            Check::Fail(CloudError::ErrorState {
                kind: "volume",
                id: id.to_string(),
                status: status.clone(),
                reason: None,
            })
        }
        _ => Check::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(status: VolumeStatus, size_gib: u64, volume_type: Option<&str>) -> Volume {
        Volume {
            id: "v".into(),
            name: "n".into(),
            size_gib,
            status,
            zone: "nova".into(),
            volume_type: volume_type.map(str::to_string),
            multiattach: false,
            attachments: Vec::new(),
            metadata: Default::default(),
            source_snapshot_id: None,
            source_volume_id: None,
            wwn: None,
        }
    }

    #[test]
    fn ready_means_available_or_in_use_and_nothing_else() {
        assert!(is_ready().matches(Some(&volume(VolumeStatus::Available, 1, None))));
        assert!(is_ready().matches(Some(&volume(VolumeStatus::InUse, 1, None))));
        for status in [VolumeStatus::Creating, VolumeStatus::Extending, VolumeStatus::Error("error".into())] {
            assert!(!is_ready().matches(Some(&volume(status.clone(), 1, None))), "{status:?}");
        }
        assert!(!is_ready().matches(None), "a volume that is gone is not ready");
    }

    #[test]
    fn extended_means_ready_at_the_size_or_larger() {
        let extended = is_ready().and(has_size(2));
        assert!(extended.matches(Some(&volume(VolumeStatus::Available, 2, None))));
        assert!(extended.matches(Some(&volume(VolumeStatus::InUse, 3, None))));
        assert!(!extended.matches(Some(&volume(VolumeStatus::Available, 1, None))));
        assert!(!extended.matches(Some(&volume(VolumeStatus::Extending, 2, None))));
    }

    #[test]
    fn type_matches_exactly() {
        assert!(has_type("fast").matches(Some(&volume(VolumeStatus::Available, 1, Some("fast")))));
        assert!(!has_type("fast").matches(Some(&volume(VolumeStatus::Available, 1, Some("faster")))));
        assert!(!has_type("fast").matches(Some(&volume(VolumeStatus::Available, 1, None))));
    }

    #[test]
    fn or_and_not_compose() {
        let settled_or_gone = is_ready().or(is_gone());
        assert!(settled_or_gone.matches(None));
        assert!(!settled_or_gone.matches(Some(&volume(VolumeStatus::Creating, 1, None))));
        assert!(is_gone::<Volume>().not().matches(Some(&volume(VolumeStatus::Creating, 1, None))));
    }

    #[test]
    fn the_verdict_fails_only_on_the_named_error_state() {
        let failing = volume(VolumeStatus::Error("error_deleting".into()), 1, None);
        let other_error = volume(VolumeStatus::Error("error".into()), 1, None);
        let failed = has_error("error_deleting");
        assert!(matches!(verdict("v", None, &is_gone(), &failed), Check::Done));
        assert!(matches!(
            verdict("v", Some(&failing), &is_gone(), &failed),
            Check::Fail(CloudError::ErrorState { status, .. }) if status == "error_deleting"
        ));
        assert!(matches!(verdict("v", Some(&other_error), &is_gone(), &failed), Check::Continue));
    }
}
