"""The window's commands as a user reaches them: the keys Help ▸ Keyboard shortcuts lists
(:data:`KEYS`), the menu bar, and the key bindings, in one place so that a key, its menu entry
and its line in the help are written together (a test checks that every key bound is listed).
Each entry calls a method of the :class:`~qvi_app.gui.window.QviWindow` it is built for.
"""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk

#: Typing into these keeps its keys: Space, +, - and M are text there.
TEXT_FIELDS = (ttk.Entry, tk.Entry, ttk.Spinbox)


def is_text_field(widget) -> bool:
    """Whether keys pressed in ``widget`` are typing. A read-only combobox (Category, Length) is
    a ttk.Entry to Python but takes no text: after a pick with the mouse it kept the focus, and
    Space, M and the arrows did nothing until the list was clicked."""
    if isinstance(widget, ttk.Combobox):
        return "readonly" not in widget.state()
    return isinstance(widget, TEXT_FIELDS)


#: What each key does, as Help ▸ Keyboard shortcuts lists it (the keys are bound in bind_keys;
#: a test checks that every key bound there is listed here).
KEYS = (("Space", "record an imitation; it stops 2 s after you do (Audio menu), or press Space again"),
        ("↑ / ↓", "the next or previous result, played"),
        ("Enter", "play the selected result again"),
        ("Q", "play the query, to compare it with the result"),
        ("Esc", "stop playing (in a field: clear it)"),
        ("L", "loop playback on or off: a result plays again and again until stopped"),
        ("[ / ] / \\", "results play a semitone lower or higher, like tape (faster or slower with it), or at their "
                       "own pitch again (the query always plays as recorded)"),
        ("+ / -", "rate the selected result good or poor: the list re-ranks at once; again: take it back"),
        ("M", "more like the selected result (or the part dragged across its waveform)"),
        ("J", "a long result: play the part where it matches the query best (outlined on its waveform); "
              "again: the next place it matches (dashed), back to the best after the last"),
        ("Z", "zoom the result's spectrogram and waveform to the part dragged across it, or to where it matches; "
              "again: the whole sound (the mouse wheel over them zooms anywhere, Shift+wheel moves along)"),
        ("Alt+← / Alt+→", "back to the list before, or forward again (the mouse's back and forward buttons too)"),
        ("Ctrl+F", "filter the list by name"),
        ("Ctrl+C", "copy the selected results' paths, one a line"),
        ("Ctrl+A", "select every result in the list, to copy or drag out together"),
        ("Ctrl+S", "save the part dragged across the result's waveform as a WAV file"),
        ("Ctrl+Shift+S", "save the query as searched (what ▶ Query plays) as a WAV file"),
        ("Ctrl+click", "pick several results (Shift+click: a run of them), to copy or drag out together"),
        ("Ctrl+O", "open a sound file as the query"),
        ("Ctrl+L", "open a library folder"),
        ("Ctrl+Q", "quit"))


def build_menu(win) -> None:
    """The menu bar: every command, with the key that does it too."""
    bar = tk.Menu(win.root)
    file = tk.Menu(bar, tearoff=False)
    file.add_command(label="Open query sound…", accelerator="Ctrl+O", command=win.open_query_dialog)
    file.add_command(label="Save the query as…", accelerator="Ctrl+Shift+S", command=win.save_query_dialog)
    win.recent_menu = tk.Menu(file, tearoff=False, postcommand=win.fill_recent)
    file.add_cascade(label="Recent queries", menu=win.recent_menu)
    file.add_separator()
    file.add_command(label="Open library folder…", accelerator="Ctrl+L", command=win.open_library_dialog)
    win.libraries_menu = tk.Menu(file, tearoff=False, postcommand=win.fill_libraries)
    file.add_cascade(label="Libraries", menu=win.libraries_menu)
    file.add_separator()
    file.add_command(label="Export feedback as CSV…", command=win.export_feedback_dialog)
    file.add_command(label="Copy liked sounds to a folder…", command=win.copy_liked_dialog)
    file.add_separator()
    file.add_command(label="Quit", accelerator="Ctrl+Q", command=win.close)
    bar.add_cascade(label="File", menu=file)
    result = tk.Menu(bar, tearoff=False)
    result.add_command(label="Play", accelerator="Enter", command=win.play_selected)
    result.add_command(label="Play the query", accelerator="Q", command=win.replay_query)
    result.add_command(label="Stop playing", accelerator="Esc", command=win.stop_playing)
    result.add_command(label="Play where it matches (again: the next place)", accelerator="J", command=win.play_match)
    result.add_command(label="Zoom to the part / the whole sound", accelerator="Z", command=win.zoom)
    win.loop_var = tk.BooleanVar(value=win.settings.loop_playback)
    result.add_checkbutton(label="Loop playback", accelerator="L", variable=win.loop_var,
                           command=win.switch_loop)
    result.add_command(label="Thumbs up (good match)", accelerator="+", command=lambda: win.rate_selected(1))
    result.add_command(label="Thumbs down (poor match)", accelerator="-", command=lambda: win.rate_selected(-1))
    result.add_command(label="More like this", accelerator="M", command=win.more_like_selected)
    result.add_command(label="Original ranking", command=win.original_ranking)
    result.add_command(label="Back to the list before", accelerator="Alt+←", command=win.back)
    result.add_command(label="Forward again", accelerator="Alt+→", command=win.forward)
    result.add_separator()
    result.add_command(label="Copy file path", accelerator="Ctrl+C", command=win.copy_selected_path)
    result.add_command(label="Select all results", accelerator="Ctrl+A", command=lambda: win.results.select_all())
    result.add_command(label="Save the selected part as…", accelerator="Ctrl+S", command=win.save_part_dialog)
    result.add_command(label="Filter by name", accelerator="Ctrl+F", command=win.find_by_name)
    result.add_command(label="Open in the default application", command=win.open_selected)
    result.add_command(label="Show in folder", command=win.reveal_selected)
    bar.add_cascade(label="Result", menu=result)
    win.result_menu = result
    audio = tk.Menu(bar, tearoff=False)
    audio.add_command(label="Devices…", command=win.choose_devices)
    win.even_loudness_var = tk.BooleanVar(value=win.settings.even_loudness)
    audio.add_checkbutton(label="Play at one loudness", variable=win.even_loudness_var,
                          command=win.switch_even_loudness)
    win.stop_when_quiet_var = tk.BooleanVar(value=win.settings.stop_when_quiet)
    audio.add_checkbutton(label="Stop recording when I stop", variable=win.stop_when_quiet_var,
                          command=win.switch_stop_when_quiet)
    audio.add_separator()
    audio.add_command(label="Play results a semitone higher", accelerator="]", command=lambda: win.change_pitch(1))
    audio.add_command(label="Play results a semitone lower", accelerator="[", command=lambda: win.change_pitch(-1))
    audio.add_command(label="Play results at their own pitch", accelerator="\\", command=lambda: win.change_pitch(0))
    bar.add_cascade(label="Audio", menu=audio)
    model = tk.Menu(bar, tearoff=False)
    model.add_command(label="Learn from my ratings…", command=win.learn_from_ratings)
    win.adapter_var = tk.BooleanVar(value=win.settings.use_adapter)
    model.add_checkbutton(label="Use what was learned", variable=win.adapter_var,
                          command=lambda: win.switch_adapter(win.adapter_var.get()))
    model.add_command(label="Forget what was learned", command=win.delete_adapter)
    win.auto_learn_var = tk.BooleanVar(value=win.settings.learn_automatically)
    model.add_checkbutton(label="Learn automatically as I rate", variable=win.auto_learn_var,
                          command=win.switch_auto_learning)
    bar.add_cascade(label="Model", menu=model)
    helpm = tk.Menu(bar, tearoff=False)
    helpm.add_command(label="Keyboard shortcuts", command=win.show_keys)
    helpm.add_command(label="About qvi", command=win.show_about)
    bar.add_cascade(label="Help", menu=helpm)
    win.root.configure(menu=bar)


def bind_keys(win) -> None:
    """The keys of :data:`KEYS`, on the whole window (a text field keeps its own)."""
    r = win.root
    r.bind("<space>", lambda e: unless_typing(e, win.space))
    r.bind("<Escape>", lambda e: win.stop_playing())
    for key in ("<plus>", "<equal>", "<KP_Add>"):
        r.bind(key, lambda e: unless_typing(e, lambda: win.rate_selected(1)))
    for key in ("<minus>", "<KP_Subtract>"):
        r.bind(key, lambda e: unless_typing(e, lambda: win.rate_selected(-1)))
    for key, step in (("<Down>", 1), ("<Up>", -1)):
        r.bind(key, lambda e, s=step: win.step_list(e, s))
    r.bind("<m>", lambda e: unless_typing(e, win.more_like_selected))
    r.bind("<j>", lambda e: unless_typing(e, win.play_match))
    r.bind("<z>", lambda e: unless_typing(e, win.zoom))
    r.bind("<l>", lambda e: unless_typing(e, lambda: (win.loop_var.set(not win.loop_var.get()),
                                                             win.switch_loop())))
    r.bind("<q>", lambda e: unless_typing(e, win.replay_query))     # then Enter: the result, to compare
    for key, step in (("<bracketright>", 1), ("<bracketleft>", -1), ("<backslash>", 0)):
        r.bind(key, lambda e, s=step: unless_typing(e, lambda: win.change_pitch(s)))
    r.bind("<Control-o>", lambda e: win.open_query_dialog())
    r.bind("<Control-l>", lambda e: win.open_library_dialog())
    r.bind("<Control-q>", lambda e: win.close())
    r.bind("<Control-c>", lambda e: unless_typing(e, win.copy_selected_path))   # a field copies its text
    r.bind("<Control-a>", lambda e: unless_typing(e, win.results.select_all))   # a field selects its text
    r.bind("<Control-f>", lambda e: win.find_by_name())
    r.bind("<Control-s>", lambda e: win.save_part_dialog())
    r.bind("<Control-S>", lambda e: win.save_query_dialog())          # with Shift
    r.bind("<Alt-Left>", lambda e: unless_typing(e, win.back))      # in a field: the cursor's
    r.bind("<Alt-Right>", lambda e: unless_typing(e, win.forward))
    # A mouse's back and forward buttons: Tk 8.6 refuses "<Button-8>" in a binding, but its
    # generic press event carries them as 8 and 9 on X11.
    r.bind("<Button>", lambda e: {8: win.back, 9: win.forward}.get(e.num, lambda: None)())


def unless_typing(event, action):
    """Do ``action`` for a key, unless it was typed into a text field (which keeps it)."""
    if is_text_field(event.widget):
        return None
    action()
    return "break"
