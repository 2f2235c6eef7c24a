"""Map rendering with folium: one module per layer, map pages and embeds."""
