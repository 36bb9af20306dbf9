"""The report's landing page (cellmoa.report.landing)."""

import base64

import pandas as pd
import pytest

from cellmoa.report.landing import SHOWN_CALLS, landing_html

pytestmark = pytest.mark.unit

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def summary():
    return pd.DataFrame(
        {
            "Metadata_Network": ["ResNet50", "Ensemble"],
            "n_treatments": [12, 12],
            "n_correct": [10, 12],
            "treatment_accuracy": [10 / 12, 1.0],
            "treatment_accuracy_ci_low": [0.5, 0.75],
            "treatment_accuracy_ci_high": [1.0, 1.0],
            "nn_nsc_accuracy": [0.75, float("nan")],
            "map_nscb": [0.8123, 0.9],
        }
    )


def calls(n=3):
    return pd.DataFrame(
        {
            "Metadata_Compound": [f"C{i}" for i in range(n)],
            "Metadata_Concentration": [0.3] * n,
            "top_moa": ["Eg5 <inhibitors>"] * n,
            "top_probability": [0.9] * n,
            "prediction_set": ["Eg5 <inhibitors>"] + [float("nan")] * (n - 1),
            "novel": [False] + [True] * (n - 1),
        }
    )


def test_the_landing_page_shows_the_summary_figure_and_calls(tmp_path):
    png = tmp_path / "accuracy.png"
    png.write_bytes(PNG)
    page = landing_html(summary(), png, calls(), "Ensemble", "bbbc021")
    assert "<h2>cellmoa results: bbbc021</h2>" in page
    assert "<td>83.3% [50.0, 100.0] (10/12)</td>" in page
    assert "<th>NSC</th>" in page and "<td>75.0%</td>" in page and "<td>0.812</td>" in page
    # the figure is the file's bytes, as a data URI broken into short lines
    uri = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode("".join(uri.split())) == PNG
    assert max(len(line) for line in page.splitlines()) < 10_000
    assert "<h3>Unannotated compounds (Ensemble)</h3>" in page
    assert "Eg5 &lt;inhibitors&gt;" in page and "<inhibitors>" not in page
    assert "(empty)" in page and page.count("<td>novel</td>") == 2


def test_the_landing_page_without_unannotated_calls_and_with_many(tmp_path):
    png = tmp_path / "accuracy.png"
    png.write_bytes(PNG)
    page = landing_html(summary(), png)
    assert "<h3>Unannotated" not in page
    many = landing_html(summary(), png, calls(SHOWN_CALLS + 5), "ResNet50")
    assert many.count("<tr><td>C") == SHOWN_CALLS
    assert "5 more in the table" in many
