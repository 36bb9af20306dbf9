"""Well names of 96-, 384- and 1536-well plates."""

import pytest

from cellmoa.data.wells import normalize_well, parse_well, plate_format_of, row_letters, well_names

pytestmark = pytest.mark.unit


def test_every_plate_format_has_its_wells_in_row_order():
    assert (
        len(well_names("96")) == 96
        and well_names("96")[:2] == ["A01", "A02"]
        and well_names("96")[-1] == "H12"
    )
    wells384 = well_names("384")
    assert len(wells384) == len(set(wells384)) == 384 and wells384[-1] == "P24"
    wells1536 = well_names("1536")
    assert len(set(wells1536)) == 1536 and wells1536[-1] == "AF48"
    assert [row_letters(i) for i in (0, 25, 26, 31)] == ["A", "Z", "AA", "AF"]


@pytest.mark.parametrize(
    "given, stored",
    [
        ("a1", "A01"),
        ("B3", "B03"),
        ("P024", "P24"),
        (" c10 ", "C10"),
        ("AF48", "AF48"),
        ("aa1", "AA01"),
    ],
)
def test_spellings_become_one(given, stored):
    assert normalize_well(given) == stored


def test_a_well_off_the_plate_is_named_with_the_format():
    with pytest.raises(
        ValueError, match=r"well 'P24' is not on a 96-well plate \(rows A\.\.H, columns 1\.\.12\)"
    ):
        parse_well("P24", "96")
    with pytest.raises(ValueError, match="not on a 384-well plate"):
        parse_well("A25", "384")
    with pytest.raises(ValueError, match="not a well name"):
        parse_well("well 7")
    with pytest.raises(ValueError, match="two-letter rows run AA..AF"):
        parse_well("BA01")


def test_the_smallest_format_holding_the_wells():
    assert plate_format_of(["A01", "H12"]) == "96"
    assert plate_format_of(["A01", "I01"]) == "384"
    assert plate_format_of(["P25"]) == "1536"
