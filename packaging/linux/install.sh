#!/bin/sh
# Add Storyteller to this user's application menu, from wherever this folder was unpacked
# (for example ~/Applications/Storyteller or /opt/Storyteller). Nothing is copied but the menu
# entry, its icons and a `storyteller` command in ~/.local/bin; the app itself stays here.
#
#   ./install.sh              add the menu entry, icons and the storyteller command
#   ./install.sh --uninstall  remove them again (your albums, stories and models are kept)
set -eu

# Must equal the GUI's QGuiApplication.setDesktopFileName(): the Wayland app id.
APP_ID=storyteller
HERE=$(cd "$(dirname "$0")" && pwd)
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
BIN_DIR=$HOME/.local/bin
DESKTOP_FILE=$DATA_HOME/applications/$APP_ID.desktop
SIZES="16 24 32 48 64 128 256 512"

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA_HOME/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$DESKTOP_FILE"
  for size in $SIZES; do rm -f "$DATA_HOME/icons/hicolor/${size}x${size}/apps/$APP_ID.png"; done
  if [ -L "$BIN_DIR/storyteller" ]; then rm -f "$BIN_DIR/storyteller"; fi
  refresh
  echo "Storyteller removed from the menu. Your library and models are still in $DATA_HOME/Storyteller."
  exit 0
fi

if [ ! -x "$HERE/Storyteller" ]; then
  echo "install.sh: $HERE/Storyteller is missing; run this script from the unpacked Storyteller folder" >&2
  exit 1
fi

mkdir -p "$DATA_HOME/applications" "$BIN_DIR"
# Exec and TryExec point at this folder; quotes keep paths with spaces working.
sed -e "s|^Exec=.*|Exec=\"$HERE/Storyteller\"|" -e "s|^TryExec=.*|TryExec=$HERE/Storyteller|" \
  "$HERE/share/applications/$APP_ID.desktop" > "$DESKTOP_FILE.tmp"
mv "$DESKTOP_FILE.tmp" "$DESKTOP_FILE"
for size in $SIZES; do
  mkdir -p "$DATA_HOME/icons/hicolor/${size}x${size}/apps"
  cp "$HERE/share/icons/hicolor/${size}x${size}/apps/$APP_ID.png" "$DATA_HOME/icons/hicolor/${size}x${size}/apps/"
done
ln -sf "$HERE/Storyteller" "$BIN_DIR/storyteller"
refresh
echo "Storyteller is in your application menu; 'storyteller --help' works in a terminal (~/.local/bin)."
