// Rules of the fix area (being written).
{
  rules+:: {
    fix: { groups: [] },
  },
}
