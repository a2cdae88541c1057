// Rules of the redis area (being written).
{
  rules+:: {
    redis: { groups: [] },
  },
}
