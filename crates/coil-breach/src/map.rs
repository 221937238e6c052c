//! Maps as data files: the text format, its parser, and the maps shipped with the game.
//!
//! A map is a small text file (`crates/coil-breach/maps/*.map`, embedded with `include_str!`
//! so the binary needs no files at run time). The format, line by line:
//!
//! ```text
//! ; comment lines start with ';' (anywhere before `grid`; blank lines are skipped there too)
//! breach-map 1          <- magic and format version, the first non-comment line
//! name Warehouse        <- display name, 1..=32 printable characters
//! id 1                  <- map id 1..=255, sent to clients in the init frame
//! size 64 36            <- width and height in cells, 16..=128 each
//! cell 10               <- one cell's side in logical pixels = one player's width, 4..=32
//! slices 5              <- wall slices per cell side (slice side = cell / slices), 1..=8
//! grid                  <- then exactly `height` lines of exactly `width` characters
//! ###...
//! end                   <- after the grid; nothing but comments and blank lines may follow
//! ```
//!
//! Grid characters: `.` floor, `A` floor in team A's spawn zone, `B` floor in team B's spawn
//! zone, `w` wood, `c` concrete, `#` steel (indestructible). Every wall cell becomes
//! `slices × slices` wall slices of its material, each with its own hit points. Each team needs
//! at least [`MIN_SPAWN_CELLS`] spawn cells. The map edge always blocks, so a border of `#` is a
//! convention, not a rule. The header keys may come in any order but each exactly once; the
//! cell must divide into whole slices of at least 2 px so a slice is never thinner than a
//! sub-pixel step can cross without noticing.
//!
//! Errors name the line and column (1-based) and what is wrong; parsing never panics.

use crate::walls::Material;
use std::fmt;

/// The shipped maps, in rotation order.
pub const BUILT_IN_MAPS: [&str; 2] = [
    include_str!("../maps/warehouse.map"),
    include_str!("../maps/courtyard.map"),
];

/// The fewest spawn cells a team needs (one per player of a 4-player team).
pub const MIN_SPAWN_CELLS: usize = 4;
const MIN_SIZE: u32 = 16;
const MAX_SIZE: u32 = 128;
const MAX_NAME: usize = 32;

/// One of the two teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Team {
    A = 0,
    B = 1,
}

impl Team {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn other(self) -> Team {
        match self {
            Team::A => Team::B,
            Team::B => Team::A,
        }
    }

    pub fn from_index(index: u8) -> Option<Team> {
        match index {
            0 => Some(Team::A),
            1 => Some(Team::B),
            _ => None,
        }
    }
}

/// A parsed, validated map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub name: String,
    pub id: u8,
    pub width_cells: u32,
    pub height_cells: u32,
    /// A cell's side in logical pixels (one player width).
    pub cell_pixels: u32,
    /// Wall slices per cell side.
    pub slices_per_cell: u32,
    /// Row-major cell materials (`Material::Empty` for floor and spawn cells).
    pub cells: Vec<Material>,
    /// Spawn cells `(x, y)` of team A and team B, in reading order.
    pub spawns: [Vec<(u32, u32)>; 2],
}

/// Why a map file was refused: where (1-based line and column; column 0 = the whole line) and
/// what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            write!(f, "map line {}: {}", self.line, self.message)
        } else {
            write!(
                f,
                "map line {} column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for MapError {}

fn error(line: usize, column: usize, message: impl Into<String>) -> MapError {
    MapError {
        line,
        column,
        message: message.into(),
    }
}

impl Map {
    /// The built-in map with this id.
    pub fn built_in(id: u8) -> Option<Map> {
        BUILT_IN_MAPS
            .iter()
            .filter_map(|text| Map::parse(text).ok())
            .find(|map| map.id == id)
    }

    /// Ids of the built-in maps in rotation order.
    pub fn built_in_ids() -> Vec<u8> {
        BUILT_IN_MAPS
            .iter()
            .filter_map(|text| Map::parse(text).ok())
            .map(|map| map.id)
            .collect()
    }

    /// Parses a map file.
    pub fn parse(text: &str) -> Result<Map, MapError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line));
        let mut name = None;
        let mut id = None;
        let mut size = None;
        let mut cell = None;
        let mut slices = None;
        let mut saw_magic = false;
        let mut last_line = 0;
        // Header: up to `grid`.
        loop {
            let Some((number, raw)) = lines.next() else {
                return Err(error(last_line + 1, 0, "file ended before `grid`"));
            };
            last_line = number;
            let line = raw.trim_end_matches('\r');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with(';') {
                continue;
            }
            let (key, value) = match trimmed.split_once(' ') {
                Some((key, value)) => (key, value.trim()),
                None => (trimmed, ""),
            };
            if !saw_magic {
                if key != "breach-map" {
                    return Err(error(number, 1, "expected `breach-map 1` first"));
                }
                if value != "1" {
                    return Err(error(
                        number,
                        12,
                        format!("unsupported format version `{value}` (only 1)"),
                    ));
                }
                saw_magic = true;
                continue;
            }
            let value_column = line.find(value).map_or(1, |at| at + 1);
            match key {
                "grid" => {
                    if !value.is_empty() {
                        return Err(error(number, value_column, "`grid` takes no value"));
                    }
                    break;
                }
                "name" => {
                    if name.is_some() {
                        return Err(error(number, 1, "`name` given twice"));
                    }
                    if value.is_empty()
                        || value.len() > MAX_NAME
                        || value.chars().any(|c| c.is_control())
                    {
                        return Err(error(
                            number,
                            value_column,
                            format!("name must be 1..={MAX_NAME} printable characters"),
                        ));
                    }
                    name = Some(value.to_string());
                }
                "id" => {
                    if id.is_some() {
                        return Err(error(number, 1, "`id` given twice"));
                    }
                    id = Some(parse_number(value, 1, 255, number, value_column, "id")? as u8);
                }
                "size" => {
                    if size.is_some() {
                        return Err(error(number, 1, "`size` given twice"));
                    }
                    let mut parts = value.split_whitespace();
                    let (Some(width), Some(height), None) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(error(
                            number,
                            value_column,
                            "size takes two numbers: width height",
                        ));
                    };
                    let width =
                        parse_number(width, MIN_SIZE, MAX_SIZE, number, value_column, "width")?;
                    let height =
                        parse_number(height, MIN_SIZE, MAX_SIZE, number, value_column, "height")?;
                    size = Some((width, height));
                }
                "cell" => {
                    if cell.is_some() {
                        return Err(error(number, 1, "`cell` given twice"));
                    }
                    cell = Some(parse_number(value, 4, 32, number, value_column, "cell")?);
                }
                "slices" => {
                    if slices.is_some() {
                        return Err(error(number, 1, "`slices` given twice"));
                    }
                    slices = Some(parse_number(value, 1, 8, number, value_column, "slices")?);
                }
                other => {
                    return Err(error(number, 1, format!("unknown header key `{other}`")));
                }
            }
        }
        let grid_line = last_line;
        let missing = |what: &str| error(grid_line, 0, format!("header has no `{what}`"));
        let name = name.ok_or_else(|| missing("name"))?;
        let id = id.ok_or_else(|| missing("id"))?;
        let (width, height) = size.ok_or_else(|| missing("size"))?;
        let cell_pixels = cell.ok_or_else(|| missing("cell"))?;
        let slices_per_cell = slices.ok_or_else(|| missing("slices"))?;
        if cell_pixels % slices_per_cell != 0 || cell_pixels / slices_per_cell < 2 {
            return Err(error(
                grid_line,
                0,
                format!(
                    "cell {cell_pixels} px does not divide into {slices_per_cell} slices of at least 2 px"
                ),
            ));
        }
        let mut cells = Vec::with_capacity((width * height) as usize);
        let mut spawns = [Vec::new(), Vec::new()];
        for row in 0..height {
            let Some((number, raw)) = lines.next() else {
                return Err(error(
                    last_line + 1,
                    0,
                    format!("grid has {row} rows, size says {height}"),
                ));
            };
            last_line = number;
            let line = raw.trim_end_matches('\r');
            if line.trim() == "end" {
                return Err(error(
                    number,
                    1,
                    format!("grid has {row} rows, size says {height}"),
                ));
            }
            let mut count = 0u32;
            for (column, character) in line.chars().enumerate() {
                if count == width {
                    return Err(error(
                        number,
                        column + 1,
                        format!("grid row is longer than the width {width}"),
                    ));
                }
                let material = match character {
                    '.' => Material::Empty,
                    'A' | 'B' => {
                        let team = usize::from(character == 'B');
                        spawns[team].push((count, row));
                        Material::Empty
                    }
                    'w' => Material::Wood,
                    'c' => Material::Concrete,
                    '#' => Material::Steel,
                    other => {
                        return Err(error(
                            number,
                            column + 1,
                            format!(
                                "unknown grid character {other:?} (expected one of . A B w c #)"
                            ),
                        ));
                    }
                };
                cells.push(material);
                count += 1;
            }
            if count < width {
                return Err(error(
                    number,
                    line.chars().count() + 1,
                    format!("grid row has {count} cells, the width is {width}"),
                ));
            }
        }
        match lines.next() {
            Some((_, line)) if line.trim() == "end" => {}
            Some((number, _)) => {
                return Err(error(
                    number,
                    1,
                    format!("expected `end` after {height} grid rows"),
                ));
            }
            None => return Err(error(last_line + 1, 0, "file ended before `end`")),
        }
        for (number, line) in lines {
            let trimmed = line.trim();
            if !trimmed.is_empty() && !trimmed.starts_with(';') {
                return Err(error(number, 1, "nothing may follow `end`"));
            }
        }
        for (team, letter) in [(0, 'A'), (1, 'B')] {
            if spawns[team].len() < MIN_SPAWN_CELLS {
                return Err(error(
                    grid_line,
                    0,
                    format!(
                        "team {letter} has {} spawn cells, needs at least {MIN_SPAWN_CELLS}",
                        spawns[team].len()
                    ),
                ));
            }
        }
        Ok(Map {
            name,
            id,
            width_cells: width,
            height_cells: height,
            cell_pixels,
            slices_per_cell,
            cells,
            spawns,
        })
    }

    /// The material of a cell; outside the map is steel (the edge blocks).
    pub fn cell(&self, x: i64, y: i64) -> Material {
        if x < 0 || y < 0 || x >= i64::from(self.width_cells) || y >= i64::from(self.height_cells) {
            return Material::Steel;
        }
        self.cells[(y as u32 * self.width_cells + x as u32) as usize]
    }

    /// A slice's side in logical pixels.
    pub fn slice_pixels(&self) -> u32 {
        self.cell_pixels / self.slices_per_cell
    }
}

fn parse_number(
    text: &str,
    low: u32,
    high: u32,
    line: usize,
    column: usize,
    what: &str,
) -> Result<u32, MapError> {
    match text.parse::<u32>() {
        Ok(value) if (low..=high).contains(&value) => Ok(value),
        _ => Err(error(
            line,
            column,
            format!("{what} must be a whole number in {low}..={high}, got `{text}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_map(grid: &str) -> String {
        format!("breach-map 1\nname Test\nid 9\nsize 16 16\ncell 10\nslices 5\ngrid\n{grid}end\n")
    }

    fn open_grid() -> String {
        let mut grid = String::new();
        for row in 0..16 {
            let line: String = (0..16)
                .map(|column| match (row, column) {
                    (1, 1..=4) => 'A',
                    (14, 11..=14) => 'B',
                    (7, 3..=10) => 'w',
                    _ => '.',
                })
                .collect();
            grid.push_str(&line);
            grid.push('\n');
        }
        grid
    }

    #[test]
    fn built_in_maps_parse_and_differ() {
        let ids = Map::built_in_ids();
        assert_eq!(ids.len(), BUILT_IN_MAPS.len());
        let first = Map::built_in(ids[0]).unwrap();
        let second = Map::built_in(ids[1]).unwrap();
        assert_ne!(first.cells, second.cells);
        assert_ne!(first.spawns, second.spawns);
        for map in [&first, &second] {
            assert!(map.spawns[0].len() >= MIN_SPAWN_CELLS);
            assert!(map.spawns[1].len() >= MIN_SPAWN_CELLS);
            assert_eq!(map.slice_pixels(), 2);
            assert!(map.cells.contains(&Material::Wood));
            assert!(map.cells.contains(&Material::Concrete));
            assert!(map.cells.contains(&Material::Steel));
        }
        assert!(Map::built_in(200).is_none());
    }

    #[test]
    fn a_small_map_parses_with_its_spawns_and_walls() {
        let map = Map::parse(&small_map(&open_grid())).unwrap();
        assert_eq!(map.name, "Test");
        assert_eq!((map.width_cells, map.height_cells), (16, 16));
        assert_eq!(map.spawns[0], vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(map.cell(3, 7), Material::Wood);
        assert_eq!(map.cell(-1, 0), Material::Steel);
        assert_eq!(map.cell(16, 0), Material::Steel);
    }

    fn refused(text: &str) -> MapError {
        Map::parse(text).expect_err("map should be refused")
    }

    #[test]
    fn bad_maps_name_line_column_and_problem() {
        let grid = open_grid();
        let unknown = refused(&small_map(&grid.replacen("....", "..x.", 1)));
        assert_eq!((unknown.line, unknown.column), (8, 3));
        assert!(
            unknown.message.contains("unknown grid character 'x'"),
            "{unknown}"
        );

        let mut short_rows = grid.clone();
        short_rows.replace_range(0..1, "");
        let short = refused(&small_map(&short_rows));
        assert_eq!((short.line, short.column), (8, 16));
        assert!(short.message.contains("15 cells"), "{short}");

        let long = refused(&small_map(&grid.replacen('\n', ".\n", 1)));
        assert_eq!((long.line, long.column), (8, 17));

        let too_few_rows: String = grid
            .lines()
            .take(15)
            .map(|line| format!("{line}\n"))
            .collect();
        let rows = refused(&small_map(&too_few_rows));
        assert!(
            rows.message.contains("grid has 15 rows, size says 16"),
            "{rows}"
        );
        assert_eq!(rows.line, 23);

        let no_spawn_b = refused(&small_map(&grid.replace('B', ".")));
        assert!(
            no_spawn_b.message.contains("team B has 0 spawn cells"),
            "{no_spawn_b}"
        );

        let magic = refused("name Test\n");
        assert_eq!((magic.line, magic.column), (1, 1));
        let version = refused("breach-map 2\n");
        assert!(version.message.contains("unsupported format version"));
        let unknown_key = refused("breach-map 1\ncolour red\n");
        assert_eq!(unknown_key.line, 2);
        let bad_size = refused("breach-map 1\nsize 500 20\n");
        assert!(bad_size.message.contains("width must be"), "{bad_size}");
        let twice = refused("breach-map 1\nid 1\nid 2\n");
        assert!(twice.message.contains("twice"));
        let missing = refused("breach-map 1\nname X\ngrid\n");
        assert!(missing.message.contains("no `id`"), "{missing}");
        let slices = refused("breach-map 1\nname X\nid 1\nsize 16 16\ncell 10\nslices 3\ngrid\n");
        assert!(slices.message.contains("does not divide"), "{slices}");
        let trailing = refused(&(small_map(&grid) + "more\n"));
        assert!(trailing.message.contains("nothing may follow"));
        let ended = refused("breach-map 1\n");
        assert!(ended.message.contains("before `grid`"));
        assert!(format!("{unknown}").starts_with("map line 8 column 3:"));
    }
}
