//! Renders a BER-vs-Eb/N0 plot from ber-sim result files: the aggregation a
//! pipeline run ends with, in miniature. Results at the same Eb/N0 are summed,
//! each point gets a 95 % Wilson interval, and the BPSK/AWGN theory curve is
//! drawn for comparison.
//!
//! Usage: cargo run --release -p sluice-plot --example ber_curve -- OUT.png RESULT.json...

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sluice_plot::{CurvePlot, CurvePoint, render_curve_png};

use ber_sim::theory::bpsk_awgn_ber;
use sluice_core::stats;

fn read(path: &Path) -> Result<(f64, u64, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let field = |k: &str| {
        v.get(k)
            .ok_or_else(|| format!("{}: missing `{k}`", path.display()))
    };
    let db = field("ebn0_db")?
        .as_f64()
        .ok_or("ebn0_db is not a number")?;
    let bits = field("bits")?.as_u64().ok_or("bits is not an integer")?;
    let errors = field("errors")?
        .as_u64()
        .ok_or("errors is not an integer")?;
    Ok((db, bits, errors))
}

fn run(out: PathBuf, inputs: &[PathBuf]) -> Result<(), String> {
    // Key by Eb/N0 in thousandths of a dB so float keys group exactly.
    let mut totals: BTreeMap<i64, (f64, u64, u64)> = BTreeMap::new();
    for p in inputs {
        let (db, bits, errors) = read(p)?;
        let e = totals
            .entry((db * 1000.0).round() as i64)
            .or_insert((db, 0, 0));
        e.1 += bits;
        e.2 += errors;
    }
    if totals.is_empty() {
        return Err("no result files given".into());
    }
    let mut points = Vec::new();
    println!(
        "{:>7} {:>14} {:>10} {:>12} {:>12} {:>24}",
        "Eb/N0", "bits", "errors", "BER", "theory", "95% CI"
    );
    for &(db, bits, errors) in totals.values() {
        let ber = errors as f64 / bits as f64;
        let (lo, hi) = stats::binomial_ci(errors, bits, 0.95);
        println!(
            "{db:>7.1} {bits:>14} {errors:>10} {ber:>12.4e} {:>12.4e}   [{lo:.3e}, {hi:.3e}]",
            bpsk_awgn_ber(db)
        );
        points.push(CurvePoint {
            x: db,
            y: ber,
            y_low: lo,
            y_high: hi,
        });
    }
    let (x0, x1) = (points[0].x, points[points.len() - 1].x);
    let theory = (0..=200)
        .map(|k| {
            let x = x0 + (x1 - x0) * k as f64 / 200.0;
            (x, bpsk_awgn_ber(x))
        })
        .collect();
    let spec = CurvePlot {
        title: "BPSK over AWGN, hard decision: ber-sim vs theory".into(),
        x_label: "Eb/N0 (dB)".into(),
        y_label: "bit error rate".into(),
        log_y: true,
        points,
        points_label: "ber-sim (95% Wilson CI)".into(),
        theory: Some(theory),
        theory_label: "0.5·erfc(√(Eb/N0))".into(),
        ..CurvePlot::default()
    };
    render_curve_png(&out, &spec).map_err(|e| e.to_string())?;
    println!("wrote {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, inputs)) = args.split_first() else {
        eprintln!("usage: ber_curve OUT.png RESULT.json...");
        return ExitCode::from(2);
    };
    match run(out.clone(), inputs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ber_curve: {e}");
            ExitCode::from(1)
        }
    }
}
