"""The demo's cast and places: sites, users, names, and how often each story happens.

Plain data, so a reader can see at a glance what the demo contains and change it in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEMO_PASSWORD = "contigo-demo"  # noqa: S105 - the published demo password
WINDOW_DAYS = 270
DAYS_PER_MONTH = 30.4375
Progress = Callable[[int, int, int], None]
"""``progress(persons_done, persons_total, encounters_done)``."""


@dataclass(frozen=True)
class SiteSpec:
    """A demo site and the slug of its users' names."""

    code: str
    name: str
    country: str
    kind: str
    elevation_m: int
    slug: str
    weight: float


SITES = (
    SiteSpec("CO-NEC", "Necoclí (Urabá)", "CO", "mobile_unit", 5, "necocli", 0.28),
    SiteSpec("CO-VDR", "Villa del Rosario (Cúcuta)", "CO", "border_point", 320, "rosario", 0.32),
    SiteSpec("EC-TUL", "Tulcán (Rumichaca)", "EC", "border_point", 2950, "tulcan", 0.25),
    SiteSpec("EC-HUA", "Huaquillas", "EC", "health_post", 15, "huaquillas", 0.15),
)
#: Binational supervisors of the Rumichaca corridor: they follow children who cross it.
BINATIONAL = (
    ("demo.co", "CO-VDR", ("CO-NEC", "EC-TUL")),
    ("demo.ec", "EC-TUL", ("EC-HUA", "CO-VDR")),
)
BORDER_HOME, BORDER_SITES = "CO-VDR", ("EC-TUL", "EC-HUA")
#: The demo staff's full names: pages and printed summaries name people, never logins.
STAFF_NAMES = {
    "necocli.sup": "Carmen Julia Ríos",
    "necocli.hw": "Luis Alberto Mena",
    "rosario.sup": "Diana Marcela Ortiz",
    "rosario.hw": "Yeison Andrés Duarte",
    "tulcan.sup": "Patricia Elena Chalá",
    "tulcan.hw": "Jorge Luis Pozo",
    "huaquillas.sup": "María Fernanda Ayala",
    "huaquillas.hw": "Kevin Steven Macías",
    "demo.co": "Sandra Milena Rueda",
    "demo.ec": "Andrés Fernando Vaca",
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIRLS = _words(
    "Valentina Isabella Sofía Camila Mariana Luciana Victoria Daniela Gabriela Salomé "
    "Antonella Valeria Sara Emily Samantha Zoe Aitana Abigail Fabiola Yulimar Rosángela Ana "
    "Lucía María José"
)
BOYS = _words(
    "Santiago Sebastián Matías Samuel Alejandro Mateo Nicolás Daniel Diego Gabriel Emmanuel "
    "Jesús David Thiago Dylan Jhoan Yeiber Luis Ángel Carlos Eduardo Jeremy Josué Maikel "
    "Wilmer"
)
WOMEN = _words(
    "María Yuleidy Yorgelis Daniela Andreína Rosa Carmen Yelitza Mariela Karla Milagros "
    "Génesis Luisana Oriana Marbelis Dayana Johana Leidy Paola Natalia Yesenia Luz Esther "
    "Fernanda"
)
FAMILY = _words(
    "Pérez González Rodríguez Hernández García Martínez López Rojas Díaz Moreno Ramírez "
    "Torres Sánchez Castillo Mendoza Guerrero Suárez Medina Contreras Quintero Marcano "
    "Zambrano Villegas Briceño Parra Salazar Ochoa Chacón Bermúdez Peña Montilla Gutiérrez "
    "Álvarez Ortega Urdaneta Colmenares Añez Cedeño Quiñónez Muñoz Ortiz Cárdenas Mosquera "
    "Palacios"
)
NOTES = (
    "Familia en tránsito hacia el sur; se entrega tarjeta Contigo.",
    "Madre refiere diarrea hace tres días; se dan sales de rehidratación.",
    "Buen apetito; come todo el sobre en consulta.",
    "Vive en albergue temporal; sin acceso regular a agua potable.",
    "Se orienta sobre lactancia materna exclusiva.",
)
POPULATION = (
    ("in_transit", 0.45),
    ("in_destination", 0.3),
    ("pendular", 0.15),
    ("host_community", 0.1),
)
#: (trajectory, outcome) of the first children, so even a tiny demo shows every story once.
MUST_HAVE = (
    ("sam", "cured"),
    ("sam", "defaulted"),
    ("mam", "cured"),
    ("sam", "ongoing"),
    ("border", ""),
    ("lost", ""),
    ("mam", "ongoing"),
    ("steady", "typo"),
)
TRAJECTORIES = (("steady", 0.47), ("lost", 0.12), ("border", 0.08), ("mam", 0.17), ("sam", 0.16))
#: How treatment ends. ``defaulted_open``: the visits stopped but nobody has closed the episode
#: yet, so the episode page derives the default from the visit log.
OUTCOMES = {
    "sam": (
        ("cured", 0.62),
        ("defaulted", 0.12),
        ("defaulted_open", 0.06),
        ("non_responder", 0.05),
        ("ongoing", 0.15),
    ),
    "mam": (("cured", 0.65), ("defaulted", 0.13), ("defaulted_open", 0.07), ("ongoing", 0.15)),
}
