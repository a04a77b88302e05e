"""Tool feedback text, the manager auto-mention and `<think>` removal (§3.6, §4.4)."""

from __future__ import annotations

from agent_runtime.feedback import auto_mention, strip_think, tool_feedback, unmention


def test_feedback_format_and_cuts():
    text = tool_feedback("exec", "Listing files.", '{"command": "ls -la"}', 300)
    assert text == '\U0001f527 `exec`\nListing files.\n```json\n{"command":"ls -la"}\n```'
    cut = tool_feedback("write_file", "", {"content": "x" * 100}, 20)
    assert cut == '\U0001f527 `write_file`\n```json\n{"content":"xxxxx...\n```'
    assert tool_feedback("list_dir", " ", "", 300) == "\U0001f527 `list_dir`\n```json\n{}\n```"
    assert len(tool_feedback("x", "e" * 500, {}, 300).splitlines()[1]) == 300


def test_feedback_mentions_no_one():
    assert unmention('<at user_id="u-alice">alice</at> and @bob') == "@\u2060alice and @\u2060bob"
    assert unmention('<at user_id="u-x"></at>') == "@\u2060u-x"


def test_auto_mention():
    assert auto_mention("Done.", manager_id="u-manager", manager_name="manager") == (
        '<at user_id="u-manager">manager</at> Done.'
    )
    tagged = '<at user_id="pt-manager">manager</at> Done.'
    assert auto_mention(tagged, manager_id="u-manager", manager_name="manager") == tagged


def test_strip_think():
    assert strip_think("<think>a\nb</think>\n\nAnswer") == "Answer"
    assert strip_think("<THINK>x</THINK>A<think>y</think>B") == "AB"
    assert strip_think("<think>unclosed") == ""
