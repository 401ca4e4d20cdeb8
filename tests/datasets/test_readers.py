"""The data set readers, on tiny files each test writes (never copies of the real data), and on the
real data sets in ../shared/data (``slow``; skipped when the folder is absent).

Fixture titles, ids and times are made up; only the files' shapes follow the real formats.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import EVENT_TYPE_NAMES, Event, EventType, Item
from liverec.datasets import FORMATS, BadRow, Dataset, FixedSplit, read_dataset
from liverec.datasets.mind import parse_mind_time
from liverec.datasets.unisrec import split_text
from liverec.evaluation.splits import leave_one_out

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DAY = 86_400.0
END = 1_538_352_000.0  # 2018-10-01 00:00 UTC, where the UniSRec reader's synthetic clock ends


def rows_of(ds: Dataset) -> list[tuple[str, str, str, str | None, float | None, float]]:
    return [(e.event_id, e.user_id, e.type.value, e.item_id, e.value, e.timestamp) for e in ds.events]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(text.encode(encoding))
    else:
        path.write_bytes(text.encode(encoding))
    return path


def assert_bad_row(tmp_path: Path, fmt: str, path: Path, line: int, problem: str, good: Dataset) -> None:
    """The bad row stops the read naming file:line: problem; skip_bad skips exactly that row."""
    with pytest.raises(InvalidInputError) as caught:
        read_dataset(tmp_path, fmt)
    assert str(caught.value) == f"{path}:{line}: {problem}"
    skipping = read_dataset(tmp_path, fmt, skip_bad=True)
    assert skipping.skipped == [BadRow(str(path), line, problem)]
    assert str(skipping.skipped[0]) == f"{path}:{line}: {problem}"
    assert any(n.startswith("1 malformed rows were skipped") for n in skipping.notes)
    assert skipping.items == good.items
    assert skipping.events == good.events


# --- read_dataset --------------------------------------------------------------------------------


def test_an_unknown_format_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"data set format 'movielense' is not one of: movielens \(") as caught:
        read_dataset(tmp_path, "movielense")
    assert all(name in str(caught.value) for name in ("movielens", "unisrec", "mind", "csv"))
    assert sorted(FORMATS) == ["csv", "mind", "movielens", "unisrec"]


@pytest.mark.parametrize("fmt", ["movielens", "mind", "csv"])
def test_a_missing_directory_is_named_with_what_it_should_hold(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidInputError, match=rf"^{re.escape(str(missing))} does not exist; a {fmt} data set is a "
                                                r"directory holding \w"):
        read_dataset(missing, fmt)


def test_a_missing_unisrec_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"holds no .inter files; a unisrec data set is a directory holding"):
        read_dataset(tmp_path, "unisrec")
    with pytest.raises(InvalidInputError, match=r"nowhere is neither a directory nor DIRECTORY/NAME"):
        read_dataset(tmp_path / "nowhere", "unisrec")


# --- MovieLens-100k ------------------------------------------------------------------------------

U_GENRE = "unknown|0\nAction|1\nComedy|2\n\n"
U_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://example.org/1|0|0|1\n"
    "2|Misérables, Les (1995)|02-Feb-1995||http://example.org/2|0|1|1\n"
    "3|Old Film (1950)|05-Mar-1950|||0|1|0\n"
    "4|unknown||||1|0|0\n"
)
U_DATA = "1\t2\t5\t881250949\n2\t1\t3\t881250000\n1\t1\t4\t881250000\n2\t3\t1\t881250999\n"
ML100K_ITEMS = [
    Item("1", "Toy Story (1995)", categories=("Comedy",), language="en",
         attributes={"year": 1995, "imdb_url": "http://example.org/1"}, created_at=788918400.0),
    Item("2", "Misérables, Les (1995)", categories=("Action", "Comedy"), language="en",
         attributes={"year": 1995, "imdb_url": "http://example.org/2"}, created_at=791683200.0),
    Item("3", "Old Film (1950)", categories=("Action",), language="en", attributes={"year": 1950}),  # before 1970
    Item("4", "unknown", language="en"),  # the "unknown" genre is no category; no date, never rated: still an item
]
ML100K_EVENTS = [  # by time; the two at 881250000 in file order
    ("ml-2-1", "2", "rate", "1", 3.0, 881250000.0),
    ("ml-1-1", "1", "rate", "1", 4.0, 881250000.0),
    ("ml-1-2", "1", "rate", "2", 5.0, 881250949.0),
    ("ml-2-3", "2", "rate", "3", 1.0, 881250999.0),
]


def write_ml100k(directory: Path, data: str = U_DATA, item: str = U_ITEM, genre: str | None = U_GENRE,
                 data_name: str = "u.data") -> None:
    write(directory / data_name, data)
    write(directory / "u.item", item, "latin-1")
    if genre is not None:
        write(directory / "u.genre", genre, "latin-1")


def test_movielens_100k_items_and_events(tmp_path: Path) -> None:
    write_ml100k(tmp_path)
    assert b"Mis\xe9rables" in (tmp_path / "u.item").read_bytes()  # the fixture is Latin-1, like the real file
    ds = read_dataset(tmp_path, "movielens")
    assert ds.name == "movielens-100k"
    assert ds.items == ML100K_ITEMS
    assert rows_of(ds) == ML100K_EVENTS
    assert ds.split is None and ds.skipped == []
    assert "2 users, 4 movies, 4 ratings; 1 movies have no rating here and are kept" in ds.notes


def test_movielens_100k_reads_gzipped_ratings(tmp_path: Path) -> None:
    write_ml100k(tmp_path, data_name="u.data.gz")
    assert not (tmp_path / "u.data").exists()
    ds = read_dataset(tmp_path, "movielens")
    assert rows_of(ds) == ML100K_EVENTS and ds.items == ML100K_ITEMS


def test_movielens_100k_without_u_genre_uses_the_standard_19_genres(tmp_path: Path) -> None:
    flags = ["0"] * 19
    flags[1] = flags[18] = "1"  # Action, Western
    write_ml100k(tmp_path, data="1\t1\t3\t1\n", item=f"1|A Western (1990)|01-Jan-1990|||{'|'.join(flags)}\n",
                 genre=None)
    assert read_dataset(tmp_path, "movielens").items[0].categories == ("Action", "Western")


@pytest.mark.parametrize(("line", "problem"), [
    ("1\t2\t5", r"expected 4 '\t'-separated fields (user, item, rating, timestamp), got 3"),
    ("x\t1\t3\t881250000", "user id 'x' is not a number"),
    ("1\t99\t3\t881250000", "movie '99' is not in u.item"),
    ("1\t3\tx\t881250000", "rating 'x' is not a number"),
    ("1\t3\t6\t881250000", "rating '6' is out of range; expected 1 to 5"),
    ("1\t3\tnan\t881250000", "rating 'nan' is out of range; expected 1 to 5"),
    ("1\t3\t4\tyesterday", "timestamp 'yesterday' is not a number of seconds"),
    ("1\t3\t4\t-5", "timestamp '-5' is not a valid time"),
    ("1\t2\t4\t881250000", "user 1 rated movie 2 again (first on u.data line 1)"),
])
def test_movielens_bad_rating_rows(tmp_path: Path, line: str, problem: str) -> None:
    write_ml100k(tmp_path)
    good = read_dataset(tmp_path, "movielens")
    write_ml100k(tmp_path, data=U_DATA + line + "\n")
    assert_bad_row(tmp_path, "movielens", tmp_path / "u.data", 5, problem, good)


@pytest.mark.parametrize(("line", "problem"), [
    ("5|Short|01-Jan-1995||", "expected 8 '|'-separated fields (id, title, release date, video release date, "
                              "IMDb URL, 3 genre flags), got 5"),
    ("x|T (1995)|01-Jan-1995|||0|0|1", "movie id 'x' is not a number"),
    ("1|Again (1995)|01-Jan-1995|||0|0|1", "movie id 1 appears again (first on line 1)"),
    ("5| |01-Jan-1995|||0|0|1", "movie 5 has an empty title"),
    ("5|T (1995)|01-Jan-1995|||0|2|1", "genre flag '2' for Action is not 0 or 1"),
    ("5|T (1995)|31-Feb-1995|||0|0|1", "release date '31-Feb-1995' is not a date like 01-Jan-1995"),
])
def test_movielens_bad_movie_rows(tmp_path: Path, line: str, problem: str) -> None:
    write_ml100k(tmp_path)
    good = read_dataset(tmp_path, "movielens")
    write_ml100k(tmp_path, item=U_ITEM + line + "\n")
    assert_bad_row(tmp_path, "movielens", tmp_path / "u.item", 5, problem, good)


def test_a_bad_u_genre_stops_the_read_even_when_skipping(tmp_path: Path) -> None:
    write_ml100k(tmp_path, genre="unknown|0\nAction\nComedy|2\n")
    with pytest.raises(InvalidInputError, match=r"u\.genre:2: expected 'genre\|index', got 'Action'$"):
        read_dataset(tmp_path, "movielens", skip_bad=True)


def test_several_skipped_rows_are_all_counted(tmp_path: Path) -> None:
    write_ml100k(tmp_path, data=U_DATA + "1\t3\tx\t1\n" + "\n" + "1\t99\t3\t1\n")
    ds = read_dataset(tmp_path, "movielens", skip_bad=True)
    path = str(tmp_path / "u.data")
    assert ds.skipped == [BadRow(path, 5, "rating 'x' is not a number"), BadRow(path, 7, "movie '99' is not in u.item")]
    assert rows_of(ds) == ML100K_EVENTS
    assert f"2 malformed rows were skipped (see Dataset.skipped); first: {path}:5: rating 'x' is not a number" \
        in ds.notes


# --- MovieLens-1M --------------------------------------------------------------------------------

MOVIES_DAT = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::Misérables, Les (1995)::Drama|Musical\n"
    "3::Old Film (1950)::Drama\n"
    "4::No Year::\n"
)
RATINGS_DAT = "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978300760\n"


def write_ml1m(directory: Path, ratings_name: str = "ratings_PARTIAL_users1-2.dat.gz", ratings: str = RATINGS_DAT,
               movies: str = MOVIES_DAT) -> None:
    write(directory / "movies.dat", movies, "latin-1")
    write(directory / ratings_name, ratings)
    write(directory / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")


def test_movielens_1m_partial_ratings(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    ds = read_dataset(tmp_path, "movielens")
    assert ds.name == "movielens-1m"
    assert ds.items == [
        Item("1", "Toy Story (1995)", categories=("Animation", "Children's", "Comedy"), language="en",
             attributes={"year": 1995}, created_at=788918400.0),
        Item("2", "Misérables, Les (1995)", categories=("Drama", "Musical"), language="en",
             attributes={"year": 1995}, created_at=788918400.0),
        Item("3", "Old Film (1950)", categories=("Drama",), language="en", attributes={"year": 1950}),
        Item("4", "No Year", language="en"),
    ]
    assert rows_of(ds) == [
        ("ml-1-1", "1", "rate", "1", 5.0, 978300760.0),
        ("ml-2-1", "2", "rate", "1", 4.0, 978300760.0),
        ("ml-1-2", "1", "rate", "2", 3.0, 978302109.0),
    ]
    assert ("PARTIAL ratings: read ratings_PARTIAL_users1-2.dat.gz instead of the full ratings.dat; 3 ratings of "
            "2 users of the 3 in users.dat (the full set has 1,000,209 ratings)") in ds.notes


def test_movielens_1m_prefers_the_full_ratings_file(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    write(tmp_path / "ratings.dat", "3::4::2::978300000\n")
    ds = read_dataset(tmp_path, "movielens")
    assert rows_of(ds) == [("ml-3-4", "3", "rate", "4", 2.0, 978300000.0)]
    assert not any("PARTIAL" in n for n in ds.notes)


def test_movielens_1m_bad_rows(tmp_path: Path) -> None:
    write_ml1m(tmp_path)
    good = read_dataset(tmp_path, "movielens")
    write_ml1m(tmp_path, ratings=RATINGS_DAT + "1::3::5\n")
    assert_bad_row(tmp_path, "movielens", tmp_path / "ratings_PARTIAL_users1-2.dat.gz", 4,
                   "expected 4 '::'-separated fields (user, item, rating, timestamp), got 3", good)
    write_ml1m(tmp_path, movies=MOVIES_DAT + "5::Title\n")
    assert_bad_row(tmp_path, "movielens", tmp_path / "movies.dat", 5,
                   "expected 3 '::'-separated fields (id, title, genres), got 2", good)


def test_movielens_without_its_files_names_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"holds no MovieLens files; expected u\.data \+ u\.item"):
        read_dataset(tmp_path, "movielens")
    write(tmp_path / "movies.dat", MOVIES_DAT, "latin-1")
    with pytest.raises(InvalidInputError, match=r"holds movies\.dat but no ratings\.dat or ratings\*\.dat\[\.gz\]"):
        read_dataset(tmp_path, "movielens")


# --- UniSRec -------------------------------------------------------------------------------------

INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
LONG = [f"B{n % 45:02d}" for n in range(60)]  # 60 items, 15 of them bought twice: longer than the 50-item cut
SEQUENCES = {"0": ["A1", "A2", "A3", "A4", "A5"], "1": LONG, "2": ["A3", "A1", "Z9"]}
TEXTS = {
    "A1": "Mr. Heater Hose 3/8 in. Industrial & Scientific Hydraulics Fittings. Mr. Heater. ",
    "A2": "Sanding Roll, 80 Grit. . PORTER-CABLE. ",
    "A3": "Lab Funnel. Industrial & Scientific Lab Funnels. SEOH. ",
    "A4": "Bench Wheel. Industrial & Scientific Abrasives. Norton Abrasives - St. Gobain. ",
    "A5": "Tape. Industrial & Scientific Tapes. 3M. ",
    **{f"B{n:02d}": f"Part {n}. Industrial & Scientific Parts. Acme. " for n in range(45)},
}  # Z9 has no text


def write_unisrec(directory: Path, name: str = "Sci", sequences: dict[str, list[str]] = SEQUENCES,
                  texts: dict[str, str] = TEXTS, cap: int = 50, longest_first: bool = True) -> dict[str, str]:
    """UniSRec's files for ``sequences``: train rows for positions 1..n-3 (longest first, as UniSRec
    writes them), valid and test rows for the last two, every history cut to the last ``cap`` items."""
    asins = sorted({a for seq in sequences.values() for a in seq} | set(texts))
    index = {a: str(n) for n, a in enumerate(asins)}

    def row(user: str, seq: list[str], at: int) -> str:
        return f"{user}\t{' '.join(index[a] for a in seq[max(0, at - cap):at])}\t{index[seq[at]]}\n"

    order = reversed if longest_first else iter
    write(directory / f"{name}.train.inter", INTER_HEADER + "".join(
        row(user, seq, at) for user, seq in sequences.items() for at in order(range(1, len(seq) - 2))))
    write(directory / f"{name}.valid.inter", INTER_HEADER + "".join(
        row(user, seq, len(seq) - 2) for user, seq in sequences.items()))
    write(directory / f"{name}.test.inter", INTER_HEADER + "".join(
        row(user, seq, len(seq) - 1) for user, seq in sequences.items()))
    write(directory / f"{name}.text", "item_id:token\ttext:token_seq\n" + "".join(
        f"{a}\t{t}\n" for a, t in texts.items()))
    write(directory / f"{name}.item2index", "".join(f"{a}\t{index[a]}\n" for a in asins))
    return index


@pytest.mark.parametrize("longest_first", [True, False])
def test_unisrec_stitches_whole_sequences_with_synthetic_times(tmp_path: Path, longest_first: bool) -> None:
    write_unisrec(tmp_path, longest_first=longest_first)
    ds = read_dataset(tmp_path, "unisrec")
    assert ds.name == "Sci"
    for rank, (user, seq) in enumerate(SEQUENCES.items()):  # users in order of first appearance: 0, 1, 2
        own = [e for e in ds.events if e.user_id == user]
        assert [e.item_id for e in own] == seq  # the long user's first 10 items come from train rows only
        assert all(e.type is EventType.PURCHASE and e.value is None for e in own)
        assert [e.event_id for e in own] == [f"Sci-{user}-{k}" for k in range(len(seq))]
        last = END + DAY * rank / 3
        assert [e.timestamp for e in own] == [last - DAY * (len(seq) - 1 - k) for k in range(len(seq))]
    times = [e.timestamp for e in ds.events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert ds.split == FixedSplit(valid={u: s[-2] for u, s in SEQUENCES.items()},
                                  test={u: s[-1] for u, s in SEQUENCES.items()})
    split = leave_one_out(ds.events, ds.split)  # raises unless the targets are each user's last two events
    assert {u: e.item_id for u, e in split.test.items()} == ds.split.test
    assert "1 users have more than 51 items: their valid/test histories are cut at 50 items, so their sequences " \
           "were stitched together from the train rows" in ds.notes


def test_leave_one_out_would_refuse_a_wrong_split(tmp_path: Path) -> None:
    write_unisrec(tmp_path)
    ds = read_dataset(tmp_path, "unisrec")
    assert ds.split is not None
    swapped = FixedSplit(valid=ds.split.test, test=ds.split.valid)
    with pytest.raises(InvalidInputError, match="target is"):
        leave_one_out(ds.events, swapped)


def test_unisrec_item_texts(tmp_path: Path) -> None:
    write_unisrec(tmp_path)
    items = {i.item_id: i for i in read_dataset(tmp_path, "unisrec").items}
    assert len(items) == len(TEXTS) + 1
    # The title ends where the category path (root "Industrial & Scientific") starts, not at "Mr. ".
    assert items["A1"] == Item("A1", "Mr. Heater Hose 3/8 in",
                               "Industrial & Scientific Hydraulics Fittings. Mr. Heater.", language="en")
    assert items["A2"] == Item("A2", "Sanding Roll, 80 Grit", "PORTER-CABLE.", language="en")  # no categories
    assert items["A4"].description == "Industrial & Scientific Abrasives. Norton Abrasives - St. Gobain."
    assert items["Z9"] == Item("Z9", "Z9", language="en")  # in the events, without a text


def test_split_text_without_a_known_root_takes_the_first_sentence() -> None:
    assert split_text("Lab Funnel. Glassware. SEOH. ") == ("Lab Funnel", "Glassware. SEOH.")
    assert split_text("Only a title. ") == ("Only a title", "")
    title, description = split_text("word " * 300 + ". Industrial & Scientific X. B. ", "Industrial & Scientific")
    assert len(title) <= 1000 and title.endswith("word") and description.startswith("word")
    assert len(re.findall(r"\bword\b", f"{title} {description}")) == 300  # nothing lost


def test_unisrec_without_item2index_keeps_the_tokens(tmp_path: Path) -> None:
    write_unisrec(tmp_path)
    (tmp_path / "Sci.item2index").unlink()
    ds = read_dataset(tmp_path / "Sci", "unisrec")  # DIRECTORY/NAME picks the data set
    assert [e.item_id for e in ds.events if e.user_id == "0"] == ["0", "1", "2", "3", "4"]  # sorted asins' indices


def test_unisrec_bad_rows_drop_the_user_whole(tmp_path: Path) -> None:
    index = write_unisrec(tmp_path)
    good = read_dataset(tmp_path, "unisrec")
    train = tmp_path / "Sci.train.inter"
    lines = train.read_text().splitlines(keepends=True)
    # user 0's train rows are lines 2 (history A1 A2, target A3) and 3 (history A1, target A2)
    assert lines[1] == f"0\t{index['A1']} {index['A2']}\t{index['A3']}\n"
    cases = [
        (f"0\t{index['A1']} {index['A2']}\t{index['A5']}\n",
         "the row of user '0' (target 'A5') does not fit the sequence their other rows give"),
        (f"0\t{index['A1']} 999\t{index['A3']}\n", "item '999' is not in Sci.item2index"),
        (f"0\t{index['A3']}\n", "expected 3 tab-separated fields, got 2"),
    ]
    for bad, problem in cases:
        write(train, "".join([lines[0], bad, *lines[2:]]))
        with pytest.raises(InvalidInputError) as caught:
            read_dataset(tmp_path, "unisrec")
        assert str(caught.value) == f"{train}:2: {problem}"
        ds = read_dataset(tmp_path, "unisrec", skip_bad=True)
        assert ds.skipped == [BadRow(str(train), 2, problem)]
        assert ds.events == [e for e in good.events if e.user_id != "0"]
        assert ds.split is not None and "0" not in ds.split.valid and "0" not in ds.split.test
        leave_one_out(ds.events, ds.split)
        assert "1 users with a malformed row were dropped whole" in ds.notes


def test_unisrec_a_user_without_a_test_row(tmp_path: Path) -> None:
    write_unisrec(tmp_path)
    test = tmp_path / "Sci.test.inter"
    write(test, "".join(line for line in test.read_text().splitlines(keepends=True) if not line.startswith("2\t")))
    with pytest.raises(InvalidInputError, match=r"Sci\.valid\.inter:4: user '2' has 0 test rows; expected 1$"):
        read_dataset(tmp_path, "unisrec")


def test_unisrec_a_bad_header_stops_the_read_even_when_skipping(tmp_path: Path) -> None:
    write_unisrec(tmp_path)
    valid = tmp_path / "Sci.valid.inter"
    write(valid, valid.read_text().replace("item_id_list:token_seq", "history:token_seq"))
    with pytest.raises(InvalidInputError, match=r"Sci\.valid\.inter:1: the header .* has no item_id_list column"):
        read_dataset(tmp_path, "unisrec", skip_bad=True)


def test_unisrec_plain_inter_file(tmp_path: Path) -> None:
    write(tmp_path / "Toys.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                   "u1\tA\t5\t300\nu2\tB\t4\t100\nu1\tB\t3\t100\n")
    write(tmp_path / "Toys.text", "item_id:token\ttext:token_seq\nA\tRobot. Toys Robots. Acme. \n")
    ds = read_dataset(tmp_path, "unisrec")
    assert ds.split is None
    assert rows_of(ds) == [
        ("Toys-3", "u2", "rate", "B", 4.0, 100.0),
        ("Toys-4", "u1", "rate", "B", 3.0, 100.0),
        ("Toys-2", "u1", "rate", "A", 5.0, 300.0),
    ]
    assert ds.items == [Item("A", "Robot", "Toys Robots. Acme.", language="en"), Item("B", "B", language="en")]
    write(tmp_path / "Toys.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\tA\t9\t300\n")
    with pytest.raises(InvalidInputError, match=r"Toys\.inter:2: rating '9' is not a number from 1 to 5$"):
        read_dataset(tmp_path, "unisrec")


# --- MIND ----------------------------------------------------------------------------------------

NFL = [{"Label": "National Football League", "Type": "O", "WikidataId": "Q1", "Confidence": 1.0,
        "OccurrenceOffsets": [0], "SurfaceForms": ["NFL"]}]
NEWS_TSV = (
    f"N1\tsports\tfootball_nfl\tBig game tonight\tThe teams meet at 8.\thttps://example.org/1\t{json.dumps(NFL)}\t[]\n"
    "N2\tnews\tnewsus\tStorm warning\t\thttps://example.org/2\t[]\t[]\n"
    "N3\tfinance\tmarkets\tStocks rise\tMarkets closed higher.\t\t\t\n"
)
BEHAVIORS_TSV = (
    "1\tU1\t11/12/2019 9:00:00 AM\tN1 N9 N2\tN3-1 N9-1 N1-0\n"
    "2\tU2\t11/11/2019 3:00:00 PM\t\tN2-1 N3-0\n"
    "3\tU1\t11/11/2019 8:00:00 AM\tN1 N9 N2\tN2-0 N1-1\n"  # U1's first impression, though on a later line
)
NOV_11 = 1_573_430_400.0  # 2019-11-11 00:00 UTC


def write_mind(directory: Path, news: str = NEWS_TSV, behaviors: str = BEHAVIORS_TSV) -> None:
    write(directory / "news.tsv", news)
    write(directory / "behaviors.tsv", behaviors)


def test_mind_items_and_click_events(tmp_path: Path) -> None:
    write_mind(tmp_path)
    ds = read_dataset(tmp_path, "mind")
    assert ds.items == [
        Item("N1", "Big game tonight", "The teams meet at 8.", categories=("sports", "football_nfl"),
             tags=("National Football League",), language="en", attributes={"url": "https://example.org/1"}),
        Item("N2", "Storm warning", categories=("news", "newsus"), language="en",
             attributes={"url": "https://example.org/2"}),
        Item("N3", "Stocks rise", "Markets closed higher.", categories=("finance", "markets"), language="en"),
    ]
    first = NOV_11 + 8 * 3600  # U1's history goes just before it, one second apart; N9 is not in news.tsv
    assert rows_of(ds) == [
        ("mind-U1-h0", "U1", "click", "N1", None, first - 3),
        ("mind-U1-h2", "U1", "click", "N2", None, first - 1),
        ("mind-3-0", "U1", "click", "N1", None, first),
        ("mind-2-0", "U2", "click", "N2", None, NOV_11 + 15 * 3600),
        ("mind-1-0", "U1", "click", "N3", None, NOV_11 + DAY + 9 * 3600),
    ]
    assert [e.session_id for e in ds.events] == [None, None, "mind-3", "mind-2", "mind-1"]
    assert "history clicks: 2 of 3 kept; 1 refer to news not in news.tsv and were dropped" in ds.notes
    assert "impression clicks: 3 of 4 kept; 1 refer to news not in news.tsv and were dropped" in ds.notes
    assert "3 impression entries shown but not clicked give no event (not a dismissal)" in ds.notes


def test_mind_reads_crlf_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    write_mind(tmp_path)
    good = read_dataset(tmp_path, "mind")
    write_mind(tmp_path, news="\ufeff" + NEWS_TSV.replace("\n", "\r\n"), behaviors=BEHAVIORS_TSV.replace("\n", "\r\n"))
    ds = read_dataset(tmp_path, "mind")
    assert ds.items == good.items and ds.events == good.events


def test_a_file_that_is_not_its_encoding_stops_the_read(tmp_path: Path) -> None:
    write_mind(tmp_path)
    (tmp_path / "news.tsv").write_bytes(NEWS_TSV.encode() + b"N9\tnews\tx\tCaf\xe9\t\t\t\t\n")
    with pytest.raises(InvalidInputError, match=r"news\.tsv: not utf-8 text after line \d+ \(invalid"):
        read_dataset(tmp_path, "mind", skip_bad=True)


@pytest.mark.parametrize(("line", "problem"), [
    ("4\tU3\t13/45/2019 1:00:00 AM\t\tN1-1", "time '13/45/2019 1:00:00 AM' is not like 11/15/2019 8:55:22 AM"),
    ("4\tU3\t11/12/2019 9:00:00 XM\t\tN1-1", "time '11/12/2019 9:00:00 XM' is not like 11/15/2019 8:55:22 AM"),
    ("4\tU3\t11/12/2019 9:00:00 AM\t\tN1-2", "impression entry 'N1-2' is not NEWSID-1 (clicked) or NEWSID-0 "
                                             "(not clicked)"),
    ("4\tU3\t11/12/2019 9:00:00 AM\tN1", "expected 5 tab-separated fields (impression id, user id, time, history, "
                                         "impressions), got 4"),
])
def test_mind_bad_behavior_rows(tmp_path: Path, line: str, problem: str) -> None:
    write_mind(tmp_path)
    good = read_dataset(tmp_path, "mind")
    write_mind(tmp_path, behaviors=BEHAVIORS_TSV + line + "\n")
    assert_bad_row(tmp_path, "mind", tmp_path / "behaviors.tsv", 4, problem, good)


@pytest.mark.parametrize(("line", "problem"), [
    ("N4\tnews\tnewsus\tTitle\tAbstract\t\tnot json\t[]", "title entities of news N4 are not a JSON list of entities"),
    ("N1\tnews\tnewsus\tAgain\t\t\t\t", "news N1 appears again (first on line 1)"),
    ("N4\tnews", "expected 8 tab-separated fields (news id, category, subcategory, title, abstract, url, "
                 "title entities, abstract entities), got 2"),
    ("N4\tnews\tnewsus\t \t\t\t\t", "news N4 has an empty title"),
])
def test_mind_bad_news_rows(tmp_path: Path, line: str, problem: str) -> None:
    write_mind(tmp_path)
    good = read_dataset(tmp_path, "mind")
    write_mind(tmp_path, news=NEWS_TSV + line + "\n")
    assert_bad_row(tmp_path, "mind", tmp_path / "news.tsv", 4, problem, good)


def test_mind_times_are_read_as_utc_on_a_12_hour_clock() -> None:
    assert parse_mind_time("11/11/2019 12:00:00 AM") == NOV_11
    assert parse_mind_time("11/11/2019 12:30:00 PM") == NOV_11 + 12.5 * 3600
    assert parse_mind_time("11/11/2019 11:59:59 PM") == NOV_11 + DAY - 1
    assert parse_mind_time("2/30/2019 1:00:00 AM") is None
    assert parse_mind_time("11/11/2019 13:00:00 PM") is None


# --- liverec's own CSV/JSONL ---------------------------------------------------------------------

ITEMS_CSV = "item_id,title,categories,created_at\ni1,Trail shoes,hiking|running,1700000000\ni2,Tent,,\n"
EVENTS = [
    {"event_id": "e1", "user_id": "u1", "type": "view", "item_id": "i1", "timestamp": 300},
    {"event_id": "e2", "user_id": "u2", "type": "purchase", "item_id": "i2", "timestamp": 100},
    {"event_id": "e3", "user_id": "u1", "type": "search", "text": "tent", "timestamp": 100},
]


def jsonl(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write_generic(directory: Path, events: str | None = None, items: str = ITEMS_CSV) -> None:
    write(directory / "items.csv", items)
    write(directory / "events.jsonl.gz", jsonl(EVENTS) if events is None else events)


def test_generic_items_and_events_sorted_by_time(tmp_path: Path) -> None:
    write_generic(tmp_path)
    ds = read_dataset(tmp_path, "csv")
    assert ds.items == [Item("i1", "Trail shoes", categories=("hiking", "running"), created_at=1_700_000_000.0),
                        Item("i2", "Tent")]  # no created_at: 0 (unknown), not the time of reading
    assert ds.events == [Event.from_dict(EVENTS[1]), Event.from_dict(EVENTS[2]), Event.from_dict(EVENTS[0])]
    assert ds.notes == ["2 users, 2 items, 3 events"]


@pytest.mark.parametrize(("record", "problem"), [
    ({"user_id": "u1", "type": "view", "item_id": "i1"}, "timestamp is missing; a data set's events need their times"),
    ({"user_id": "u1", "type": "view", "item_id": "i9", "timestamp": 1}, "item 'i9' is not in the items file"),
    ({"user_id": "u1", "type": "clik", "item_id": "i1", "timestamp": 1},
     f"event type 'clik' is not one of {EVENT_TYPE_NAMES}"),
])
def test_generic_bad_event_rows(tmp_path: Path, record: dict[str, object], problem: str) -> None:
    write_generic(tmp_path)
    good = read_dataset(tmp_path, "csv")
    write_generic(tmp_path, events=jsonl([*EVENTS, record]))
    assert_bad_row(tmp_path, "csv", tmp_path / "events.jsonl.gz", 4, problem, good)


def test_generic_bad_item_row(tmp_path: Path) -> None:
    write_generic(tmp_path)
    good = read_dataset(tmp_path, "csv")
    write_generic(tmp_path, items=ITEMS_CSV + "i3,,,\n")
    assert_bad_row(tmp_path, "csv", tmp_path / "items.csv", 4, "item 'i3' has no title", good)


def test_generic_skips_a_line_that_does_not_parse_and_reads_on(tmp_path: Path) -> None:
    text = jsonl(EVENTS[:1]) + "{not json\n" + jsonl(EVENTS[1:])
    write_generic(tmp_path, events=text)
    path = tmp_path / "events.jsonl.gz"
    with pytest.raises(InvalidInputError, match=rf"^{re.escape(str(path))}:2: not valid JSON \("):
        read_dataset(tmp_path, "csv")
    ds = read_dataset(tmp_path, "csv", skip_bad=True)
    assert [(b.path, b.line) for b in ds.skipped] == [(str(path), 2)]
    assert ds.skipped[0].problem.startswith("not valid JSON (")
    assert [e.event_id for e in ds.events] == ["e2", "e3", "e1"]


def test_generic_needs_exactly_one_file_of_each(tmp_path: Path) -> None:
    write_generic(tmp_path)
    write(tmp_path / "items.jsonl", "")
    with pytest.raises(InvalidInputError, match=r"several items files \(items\.csv, items\.jsonl\); keep one"):
        read_dataset(tmp_path, "csv")
    (tmp_path / "items.jsonl").unlink()
    (tmp_path / "events.jsonl.gz").unlink()
    with pytest.raises(InvalidInputError, match=r"holds no events file; expected one of events\.csv, events\.csv\.gz"):
        read_dataset(tmp_path, "csv")


# --- the real data sets (slow) -------------------------------------------------------------------


def real(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"the real data set {path} is not on this machine (research data, never in the repository)")
    return path


def in_time_order(ds: Dataset) -> bool:
    times = [e.timestamp for e in ds.events]
    return times == sorted(times)


@pytest.mark.slow
def test_real_movielens_100k() -> None:
    ds = read_dataset(real("movielens-100k"), "movielens")
    assert (len({e.user_id for e in ds.events}), len(ds.items), len(ds.events)) == (943, 1682, 100_000)
    assert len({e.item_id for e in ds.events}) == 1682
    assert Counter(e.value for e in ds.events) == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert (ds.events[0].timestamp, ds.events[-1].timestamp) == (874724710.0, 893286638.0)  # 1997-09-20 .. 1998-04-22
    assert in_time_order(ds) and ds.skipped == []
    assert any(i.title == "Misérables, Les (1995)" for i in ds.items)  # Latin-1


@pytest.mark.slow
def test_real_movielens_1m_partial() -> None:
    ds = read_dataset(real("movielens-1m"), "movielens")
    assert {e.user_id for e in ds.events} == {str(u) for u in range(1, 3000)}
    assert (len(ds.items), len(ds.events), len({e.item_id for e in ds.events})) == (3883, 487_650, 3615)
    assert (ds.events[0].timestamp, ds.events[-1].timestamp) == (970620734.0, 1046388675.0)  # 2000-10-04 .. 2003-02-27
    assert in_time_order(ds) and ds.skipped == []
    assert any(n.startswith("PARTIAL ratings: read ratings_PARTIAL_users1-2999.dat.gz") for n in ds.notes)


@pytest.mark.slow
def test_real_amazon_scientific_matches_its_shipped_split() -> None:
    ds = read_dataset(real("amazon-scientific"), "unisrec")
    users = Counter(e.user_id for e in ds.events)
    assert (len(users), len(ds.items), len(ds.events)) == (8442, 4385, 59_427)
    assert (min(users.values()), max(users.values())) == (5, 80)
    assert round(statistics.mean(users.values()), 2) == 7.04
    assert sum(1 for n in users.values() if n > 51) == 3  # histories past the 50-item cut, stitched from train
    assert ds.split is not None and len(ds.split.valid) == len(ds.split.test) == 8442
    split = leave_one_out(ds.events, ds.split)  # raises unless the shipped targets are each user's last two
    assert len(split.train) == 59_427 - 2 * 8442
    assert in_time_order(ds) and ds.skipped == []
    assert all(i.title and len(i.title) <= 1000 for i in ds.items)


@pytest.mark.slow
def test_real_mind_subset_counts() -> None:
    ds = read_dataset(real("mind-small-subset"), "mind")
    assert len(ds.items) == 2000
    assert len({i.categories[0] for i in ds.items}) == 15
    assert sum(1 for i in ds.items if not i.description) == 99
    assert (len(ds.events), len({e.user_id for e in ds.events})) == (5529, 2455)
    assert sum(1 for e in ds.events if e.session_id is not None) == 175  # clicks in impressions, of 7,542
    assert "impression clicks: 175 of 7,542 kept; 7,367 refer to news not in news.tsv and were dropped" in ds.notes
    assert "history clicks: 5,354 of 138,932 kept; 133,578 refer to news not in news.tsv and were dropped" in ds.notes
    assert in_time_order(ds) and ds.skipped == []
