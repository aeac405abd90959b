//! The report's plots, as SVG: NDR against stream count (with the I/O ceiling and the
//! engine as lines), the latency percentiles at the NDR, and every search's trials.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::inputs::{Inputs, Mode};
use crate::table::run_name;

const SIZE: (u32, u32) = (900, 520);
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// plotters' errors carry the backend's error type; the report only needs the message.
fn e<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> anyhow::Error {
    move |err| anyhow!("{what}: {err:?}")
}

/// NDR (Mpps) against streams, a line per mode; the ceiling, the engine and rtpengine flat.
pub(crate) fn throughput(inputs: &Inputs, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e("throughput plot"))?;
    let runs: Vec<_> = inputs.relay.iter().filter(|r| !r.flooded).collect();
    let (engine, _) = inputs.engine_rekey("AES_CM_128_HMAC_SHA1_80");
    let ceiling = inputs.looped.as_ref().map(|l| l.ndr_pps / 1e6);
    let engine = engine.map(|e| e.packets_per_s / 1e6);
    let top = runs
        .iter()
        .map(|r| r.search.ndr_pps / 1e6)
        .chain(ceiling)
        .chain(engine)
        .fold(0.1f64, f64::max)
        * 1.15;
    let lo = runs.iter().map(|r| r.streams).min().unwrap_or(1000).max(1) as f64 / 2.0;
    let hi = runs.iter().map(|r| r.streams).max().unwrap_or(1000).max(1) as f64 * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "NDR against concurrent streams (one relay worker)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..top)
        .map_err(e("throughput axes"))?;
    chart
        .configure_mesh()
        .x_desc("streams")
        .y_desc("Mpps")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(e("throughput mesh"))?;
    for (i, mode) in [Mode::Srtp, Mode::Rtp].into_iter().enumerate() {
        let points: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| (r.streams as f64, r.search.ndr_pps / 1e6))
            .collect();
        if points.is_empty() {
            continue;
        }
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(e("throughput line"))?
            .label(format!("relay, {}", mode.label()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e("throughput points"))?;
    }
    for (i, (label, value)) in [
        ("I/O ceiling: testpmd over memif", ceiling),
        ("SRTP engine alone, burst re-key", engine),
        (
            "rtpengine, SRTP re-key over loopback UDP",
            inputs.rtpengine.as_ref().map(|r| r.ndr_pps / 1e6),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(v) = value else { continue };
        let c = colour(2 + i);
        chart
            .draw_series(LineSeries::new(vec![(lo, v), (hi, v)], c.stroke_width(1)))
            .map_err(e("throughput reference"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e("throughput legend"))?;
    root.present().map_err(e("writing the throughput plot"))
}

/// Latency percentiles at the NDR, a line per run (logarithmic microseconds).
pub(crate) fn latency(inputs: &Inputs, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e("latency plot"))?;
    let mut series: Vec<(String, [u64; 5])> = Vec::new();
    if let Some(l) = &inputs.looped {
        series.push((
            format!("testpmd loop, {} streams", l.streams),
            l.latency_at_ndr_ns,
        ));
    }
    for r in &inputs.relay {
        series.push((
            format!("{}, {} streams", run_name(r), r.streams),
            r.search.latency_at_ndr_ns,
        ));
    }
    let us = |ns: u64| (ns.max(100) as f64) / 1e3;
    let top = series
        .iter()
        .flat_map(|(_, l)| l.iter().map(|&v| us(v)))
        .fold(1f64, f64::max)
        * 2.0;
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency at the NDR, generator to generator",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2f64..4.2f64, (0.1f64..top).log_scale())
        .map_err(e("latency axes"))?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && (0.0..5.0).contains(&i) {
                labels[i as usize].to_owned()
            } else {
                String::new()
            }
        })
        .x_desc("percentile")
        .y_desc("microseconds")
        .draw()
        .map_err(e("latency mesh"))?;
    for (i, (name, l)) in series.iter().enumerate() {
        let c = colour(i);
        let points: Vec<(f64, f64)> = l
            .iter()
            .enumerate()
            .map(|(k, &v)| (k as f64, us(v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(e("latency line"))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(e("latency points"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e("latency legend"))?;
    root.present().map_err(e("writing the latency plot"))
}

/// Every search's trials in order: the rate tried, filled where it passed (no loss), a
/// cross where it lost packets.
pub(crate) fn trace(inputs: &Inputs, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e("trace plot"))?;
    let mut searches: Vec<(String, &crate::inputs::Search)> = Vec::new();
    if let Some(l) = &inputs.looped {
        searches.push(("testpmd loop".into(), l));
    }
    for r in &inputs.relay {
        searches.push((format!("{}, {} streams", run_name(r), r.streams), &r.search));
    }
    let most = searches
        .iter()
        .map(|(_, s)| s.trials.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let top = searches
        .iter()
        .flat_map(|(_, s)| s.trials.iter().map(|t| t.rate_pps / 1e6))
        .fold(0.1f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "NDR then PDR searches: each trial's rate (dot: no loss, cross: loss)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..most as f64 + 0.5, 0f64..top)
        .map_err(e("trace axes"))?;
    chart
        .configure_mesh()
        .x_desc("trial")
        .y_desc("Mpps offered")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(e("trace mesh"))?;
    for (i, (name, search)) in searches.iter().enumerate() {
        let c = colour(i);
        let points: Vec<(f64, f64, bool)> = search
            .trials
            .iter()
            .enumerate()
            .map(|(k, t)| ((k + 1) as f64, t.rate_pps / 1e6, t.loss_ratio == 0.0))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, y, _)| (x, y)),
                c.mix(0.5).stroke_width(1),
            ))
            .map_err(e("trace line"))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|&(x, y, _)| Circle::new((x, y), 4, c.filled())),
            )
            .map_err(e("trace passes"))?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|&(x, y, _)| Cross::new((x, y), 5, c.stroke_width(2))),
            )
            .map_err(e("trace failures"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e("trace legend"))?;
    root.present().map_err(e("writing the trace plot"))
}
