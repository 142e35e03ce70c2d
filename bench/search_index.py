"""Benchmark the in-memory fuzzy name index (target: p95 < 20 ms per query at 20,000 persons).

Run from the repository root: ``python -m bench.search_index [--persons 20000] [--queries 2000]``.

Builds an index of synthetic Spanish and Portuguese names (fixed seed; one or two given names,
two surnames, some with particles, some misspelt so the vocabulary grows as it does in real
registers; ``--typo-rate`` raises that), then times queries of the kinds health workers type: a
full name, two names, names out of order, a typo, a single common surname, a three-letter prefix.
Cold timings disable the per-word match cache, so every query word is matched against the
vocabulary afresh.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from contigo.search_index import FuzzyNameIndex

SEED = 20240607
_GIVEN_TEXT = (
    "María José Ana Luisa Carmen Rosa Juana Daniela Valentina Camila Sofía Isabella Gabriela "
    "Mariana Andrea Paola Carolina Alejandra Fernanda Yolanda Yesenia Beatriz Adriana Lucía "
    "Verónica Patricia Claudia Natalia Diana Jimena Ximena Luz Esperanza Milagros Guadalupe "
    "Francisca Antonia Raquel Elena Teresa Leticia Ángela Mercedes Dayana Yuliana Kelly Maite "
    "Juan Carlos Luis Jorge Pedro Miguel Ángel Andrés Santiago Mateo Sebastián Diego Alejandro "
    "Daniel David Samuel Gabriel Tomás Nicolás Emmanuel Jesús Manuel Francisco Javier Rafael "
    "Ricardo Eduardo Fernando Héctor Óscar Víctor Wilmer Yeferson Anderson Brayan Kevin Joao "
    "Thiago Lucas Guilherme Gustavo Rodrigo Felipe Vinícius Matheus Júlia Beatriz Larissa"
)
_FAMILY_TEXT = (
    "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez "
    "Vázquez Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro "
    "Ortiz Rubio Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos Lozano "
    "Guerrero Cano Prieto Méndez Cruz Calvo Gallego Vidal León Márquez Herrera Peña Flores "
    "Cabrera Campos Vega Fuentes Carrasco Diez Caballero Reyes Nieto Aguilar Pascual Santana "
    "Herrero Lorenzo Montero Hidalgo Giménez Ibáñez Ferrer Durán Santiago Benítez Mora "
    "Vicente Vargas Arias Carmona Crespo Román Pastor Soto Sáez Velasco Moya Soler Parra "
    "Esteban Bravo Gallardo Rojas Silva Souza Oliveira Pereira Lima Carvalho Ferreira Almeida "
    "Costa Ribeiro Araújo Barbosa Rocha Dias Nascimento Andrade Moreira Nunes Marques Machado "
    "Mendes Freitas Cardoso Teixeira Correia Quispe Mamani Huamán Condori Chambi Ccori Tapia "
    "Villalobos Quiroga Paredes Salazar Contreras Figueroa Bustamante Valencia Chávez Acosta "
    "Mejía Rincón Cárdenas Ospina Zapata Londoño Montoya Escobar Restrepo Betancourt Osorio"
)
GIVEN = _GIVEN_TEXT.split()
FAMILY = _FAMILY_TEXT.split()
PARTICLES = ("de", "del", "de la", "da", "dos")


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word))
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + rng.choice("abcdefghilmnoprstuvyz") + word[i + 1 :]
    if kind == 1 and len(word) > 4:
        return word[:i] + word[i + 1 :]
    j = min(i + 1, len(word) - 1)
    return word[:i] + word[j] + word[i] + word[j + 1 :]


def _name(rng: random.Random, typo_rate: float) -> list[str]:
    given = rng.sample(GIVEN, rng.choice((1, 2, 2)))
    family = rng.sample(FAMILY, 2)
    if rng.random() < 0.1:
        family[1] = f"{rng.choice(PARTICLES)} {family[1]}"
    return [_typo(rng, w) if rng.random() < typo_rate else w for w in given + family]


def _queries(rng: random.Random, people: list[list[str]], n: int) -> list[str]:
    kinds: list[Callable[[list[str]], str]] = [
        lambda w: " ".join(w),
        lambda w: f"{w[0]} {w[-2]}",
        lambda w: " ".join(reversed(w)),
        lambda w: f"{_typo(rng, w[0])} {w[-2]}",
        lambda w: w[-2],
        lambda w: w[-2][:3],
    ]
    return [rng.choice(kinds)(rng.choice(people)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument(
        "--typo-rate",
        type=float,
        default=0.04,
        help="chance that each stored word is misspelt; higher means a larger vocabulary",
    )
    args = parser.parse_args()
    rng = random.Random(SEED)
    people = [_name(rng, args.typo_rate) for _ in range(args.persons)]

    queries = _queries(rng, people, args.queries)
    for label, cache_size in (("cold (no match cache)", 0), ("warm (default cache)", 4096)):
        index = FuzzyNameIndex(match_cache_size=cache_size)
        started = time.perf_counter()
        for i, words in enumerate(people):
            index.add(f"p{i:06d}", " ".join(words))
        build_s = time.perf_counter() - started
        timings: list[float] = []
        for query in queries:
            started = time.perf_counter()
            index.search(query, limit=20)
            timings.append((time.perf_counter() - started) * 1000)
        cuts = statistics.quantiles(timings, n=100)
        print(
            f"{label}: persons {len(index)}, distinct name words {index.vocabulary_size}, "
            f"build {build_s:.2f} s, queries {len(queries)}"
        )
        print(
            f"  per query: p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms, p99 {cuts[98]:.2f} ms, "
            f"max {max(timings):.2f} ms (target p95 < 20 ms)"
        )


if __name__ == "__main__":
    main()
