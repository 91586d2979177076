import pandas as pd

from hf_geokd.tables import format_value, markdown_table


def test_markdown_table_formats_each_type():
    frame = pd.DataFrame({"width": [128, 1024], "floor": [0.079512345, float("nan")], "ok": [True, False],
                          "big": [123456.0, 2.5]})
    assert markdown_table(frame).splitlines() == [
        "| width | floor | ok | big |",
        "|---|---|---|---|",
        "| 128 | 0.07951 | True | 123,456 |",
        "| 1,024 |  | False | 2.5 |",
    ]
    assert format_value(None) == "" and format_value(0.5, digits=2) == "0.5" and format_value("text") == "text"
