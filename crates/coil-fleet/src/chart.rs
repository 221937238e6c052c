//! The week as an SVG chart: players and capacity (left axis) and cost per hour (right axis).
//!
//! Owns only the drawing; it must not compute anything the simulation did not report. Plain
//! SVG text, no dependency, readable in any browser.

use std::fmt::Write as _;

use crate::simulate::SeriesPoint;
use crate::traffic::MINUTES_PER_DAY;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

pub fn svg(title: &str, series: &[SeriesPoint]) -> String {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let last_minute = series.last().map_or(1, |point| point.minute.max(1));
    let highest_seats = series
        .iter()
        .map(|point| point.capacity_seats.max(point.players) as f64)
        .fold(1.0, f64::max);
    let highest_cost = series
        .iter()
        .map(|point| point.cost_eur_per_hour)
        .fold(0.01, f64::max);
    let x = |minute: u32| LEFT + f64::from(minute) / f64::from(last_minute) * plot_width;
    let y_seats = |value: f64| TOP + plot_height - value / highest_seats * plot_height;
    let y_cost = |value: f64| TOP + plot_height - value / highest_cost * plot_height;
    let polyline = |values: &dyn Fn(&SeriesPoint) -> (f64, f64)| {
        let mut points = String::new();
        for point in series {
            let (px, py) = values(point);
            let _ = write!(points, "{px:.1},{py:.1} ");
        }
        points
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="15">{}</text>"##,
        escape(title)
    );
    // Day grid.
    for day in 0..=7u32 {
        let px = x((day * MINUTES_PER_DAY).min(last_minute));
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_height
        );
        if day < 7 {
            let name = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day as usize];
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{name} (UTC)</text>"##,
                px + plot_width / 14.0,
                HEIGHT - 20.0
            );
        }
    }
    for step in 0..=4 {
        let fraction = f64::from(step) / 4.0;
        let py = TOP + plot_height - fraction * plot_height;
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{py:.1}" text-anchor="end">{:.0}</text><text x="{:.1}" y="{py:.1}">€{:.2}/h</text>"##,
            LEFT - 6.0,
            fraction * highest_seats,
            WIDTH - RIGHT + 6.0,
            fraction * highest_cost
        );
    }
    let capacity = polyline(&|point| (x(point.minute), y_seats(point.capacity_seats as f64)));
    let players = polyline(&|point| (x(point.minute), y_seats(point.players as f64)));
    let cost = polyline(&|point| (x(point.minute), y_cost(point.cost_eur_per_hour)));
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#2a7" stroke-width="1.5" points="{capacity}"/>"##
    );
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{players}"/>"##
    );
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#c33" stroke-width="1" stroke-dasharray="4 3" points="{cost}"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#36c">players</text><text x="{:.1}" y="{:.1}" fill="#2a7">seats on accepting nodes</text><text x="{:.1}" y="{:.1}" fill="#c33">servers' cost per hour (right axis)</text>"##,
        TOP - 6.0,
        LEFT + 70.0,
        TOP - 6.0,
        LEFT + 250.0,
        TOP - 6.0
    );
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_one_point_per_series_entry_and_escapes_the_title() {
        let series: Vec<SeriesPoint> = (0..3)
            .map(|step| SeriesPoint {
                minute: step * 60,
                demand: 10.0,
                players: 10,
                waiting: 0,
                nodes_active: 1,
                nodes_booting: 0,
                nodes_draining: 0,
                capacity_seats: 20,
                cost_eur_per_hour: 0.2,
            })
            .collect();
        let drawing = svg("a < b", &series);
        assert!(drawing.starts_with("<svg"));
        assert!(drawing.contains("a &lt; b"));
        assert_eq!(drawing.matches("<polyline").count(), 3);
        let first_line = drawing
            .lines()
            .find(|line| line.contains("#36c\" stroke-width"))
            .expect("players line");
        assert_eq!(first_line.matches(',').count(), 3);
    }
}
