// Rules of the eventbus area (being written).
{
  rules+:: {
    eventbus: { groups: [] },
  },
}
