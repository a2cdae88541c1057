// Rules of the timescale area (being written).
{
  rules+:: {
    timescale: { groups: [] },
  },
}
