"""The small, fixed corpus behind the demo ``web_search`` tool: short factual entries, offline.

It exists so the demo agent (and tests) can look facts up and then calculate with them without any
network access. Figures are rounded, public reference values.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Entry(NamedTuple):
    """One search result: a short title and a one- or two-sentence fact."""

    title: str
    text: str


CORPUS: Final[tuple[Entry, ...]] = (
    Entry(
        "World population",
        "The world population reached about 8.1 billion (8,100,000,000) people in 2024, according to the UN.",
    ),
    Entry("Speed of light", "The speed of light in vacuum is exactly 299,792,458 metres per second (m/s)."),
    Entry(
        "Earth land area",
        "The land area of Earth is about 148,940,000 square kilometres (km²), roughly 29% of its surface.",
    ),
    Entry(
        "Mount Everest height",
        "Mount Everest is the highest mountain above sea level at 8,849 metres (m), per the 2020 survey.",
    ),
    Entry("Earth radius", "The mean radius of Earth is about 6,371 kilometres (km)."),
    Entry(
        "Moon distance",
        "The average distance from Earth to the Moon is about 384,400 kilometres (km).",
    ),
    Entry(
        "Astronomical unit",
        "The astronomical unit, the mean Earth-Sun distance, is exactly 149,597,870,700 metres (m).",
    ),
    Entry(
        "Pacific Ocean area",
        "The Pacific Ocean, the largest ocean, covers about 165,250,000 square kilometres (km²).",
    ),
    Entry(
        "Boiling point of water",
        "Pure water boils at 100 degrees Celsius (212 °F) at standard sea-level atmospheric pressure.",
    ),
    Entry(
        "Eiffel Tower height",
        "The Eiffel Tower in Paris is about 330 metres (m) tall including its antennas.",
    ),
    Entry(
        "Speed of sound",
        "The speed of sound in dry air at 20 degrees Celsius is about 343 metres per second (m/s).",
    ),
    Entry(
        "Avogadro constant",
        "The Avogadro constant is exactly 6.02214076 × 10^23 per mole (mol⁻¹).",
    ),
    Entry("Age of Earth", "Earth is about 4.54 billion (4,540,000,000) years old."),
    Entry(
        "Amazon River length",
        "The Amazon River in South America is about 6,400 kilometres (km) long.",
    ),
    Entry(
        "Mariana Trench depth",
        "The Challenger Deep in the Mariana Trench, the deepest known point of the ocean, is about "
        "10,935 metres (m) deep.",
    ),
    Entry(
        "Python release",
        "The Python programming language was first released by Guido van Rossum in 1991.",
    ),
)
