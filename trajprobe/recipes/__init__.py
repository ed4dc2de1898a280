"""The papers' set-ups as typed configurations at three presets: smoke, quick, paper."""
