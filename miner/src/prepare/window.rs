//! Context windows: consecutive records of one partition become one record.
//!
//! Records are ordered by the partition keys and then the order keys (a stable sort, so
//! ties keep input order); each run of equal partition keys yields windows of `size`
//! records every `stride` records.  Field `f` at position `i` of a window becomes field
//! `{name}_ctx{index}` (the spec's `column_template`), a member of window family `f`.
//! Partition and order keys that are not selected fields are dropped afterwards.

use rulepacks::schema::Role;

use super::Dataset;
use crate::spec::ContextWindowSpec;
use crate::table::ColumnData;

/// What windowing made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowReport {
    pub size: u32,
    pub stride: u32,
    pub partitions: u64,
    /// Partitions with fewer records than the window, which give no window.
    pub short_partitions: u64,
    pub windows: u64,
}

pub(super) fn apply(
    dataset: &mut Dataset,
    spec: &ContextWindowSpec,
    selected: &[String],
) -> Result<(), String> {
    let index = |name: &String| {
        dataset
            .field_index(name)
            .ok_or_else(|| format!("context_window: unknown column `{name}`"))
    };
    let partition: Vec<usize> = spec
        .partition_by
        .iter()
        .map(index)
        .collect::<Result<_, _>>()?;
    let order: Vec<usize> = spec.order_by.iter().map(index).collect::<Result<_, _>>()?;
    let rows = sorted_rows(dataset, &partition, &order);
    let (starts, report) = window_starts(dataset, &partition, &rows, spec);
    let size = spec.size as usize;
    if starts.is_empty() {
        dataset.origins.clear();
        dataset.columns.iter_mut().for_each(|c| *c = c.gather(&[]));
        dataset.report.windows = Some(report);
        return Ok(());
    }
    let kept: Vec<usize> = (0..dataset.fields.len())
        .filter(|&i| selected.contains(&dataset.fields[i].name))
        .collect();
    let mut fields = Vec::with_capacity(kept.len() * size);
    let mut columns = Vec::with_capacity(kept.len() * size);
    for &f in &kept {
        for offset in 0..size {
            let picks: Vec<usize> = starts.iter().map(|&s| rows[s + offset]).collect();
            let mut field = dataset.fields[f].clone();
            field.name = spec
                .column_template
                .replace("{name}", &dataset.fields[f].name)
                .replace("{index}", &offset.to_string());
            field.family = Some(dataset.fields[f].name.clone());
            field.index = Some(offset as u32);
            if !field.roles.contains(&Role::Window) {
                field.roles.push(Role::Window);
            }
            fields.push(field);
            columns.push(dataset.columns[f].gather(&picks));
        }
    }
    dataset.origins = starts.iter().map(|&s| dataset.origins[rows[s]]).collect();
    dataset.fields = fields;
    dataset.columns = columns;
    dataset.report.windows = Some(report);
    Ok(())
}

/// Row indices ordered by partition keys, then order keys.
fn sorted_rows(dataset: &Dataset, partition: &[usize], order: &[usize]) -> Vec<usize> {
    let keys: Vec<&ColumnData> = partition
        .iter()
        .chain(order)
        .map(|&c| &dataset.columns[c])
        .collect();
    let mut rows: Vec<usize> = (0..dataset.rows()).collect();
    rows.sort_by(|&a, &b| {
        keys.iter()
            .map(|c| c.cmp_rows(a, b, &dataset.strings))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows
}

/// Start positions (into `rows`) of every window.
fn window_starts(
    dataset: &Dataset,
    partition: &[usize],
    rows: &[usize],
    spec: &ContextWindowSpec,
) -> (Vec<usize>, WindowReport) {
    let same = |a: usize, b: usize| {
        partition
            .iter()
            .all(|&c| dataset.columns[c].cmp_rows(a, b, &dataset.strings).is_eq())
    };
    let (size, stride) = (spec.size as usize, spec.stride as usize);
    let mut report = WindowReport {
        size: spec.size,
        stride: spec.stride,
        ..WindowReport::default()
    };
    let mut starts = Vec::new();
    let mut begin = 0;
    while begin < rows.len() {
        let mut end = begin + 1;
        while end < rows.len() && same(rows[begin], rows[end]) {
            end += 1;
        }
        report.partitions += 1;
        if end - begin < size {
            report.short_partitions += 1;
        }
        let mut s = begin;
        while s + size <= end {
            starts.push(s);
            s += stride;
        }
        begin = end;
    }
    report.windows = starts.len() as u64;
    (starts, report)
}
