from otcdesk.bots.base import normalise_text


def test_normalise_text_full_width_controls_and_whole_length():
    assert normalise_text("３００　１个月\x00 平值看跌") == "300 1个月 平值看跌"
    assert normalise_text(b"\xff\xfe300") == "300"
    assert normalise_text(None) == ""
    assert normalise_text("看" * 100_000) == "看" * 100_000  # kept whole: the desk decides what it parses
